"""Native API v1: an admin key manages the API keys of its own project."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.access import AdminProject
from api.deps import Keys
from loopline.keys import UnknownKeyError
from loopline.models import ApiKeyRequest, ApiKeyView, NewApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(request: ApiKeyRequest, keys: Keys, project: AdminProject) -> NewApiKey:
    """A new key of this project. Its `key` is in this answer only; keep it safe."""
    return await keys.create(request.name, project, request.scopes)


@router.get("")
async def list_keys(keys: Keys, project: AdminProject) -> list[ApiKeyView]:
    """This project's keys, revoked ones included, oldest first (never their secrets)."""
    return await keys.list(project)


@router.delete("/{key_id}")
async def revoke_key(key_id: str, keys: Keys, project: AdminProject) -> ApiKeyView:
    """Revoke a key of this project; requests with it get 401 from now on."""
    try:
        return await keys.revoke(key_id, project)
    except UnknownKeyError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
