"""Native API v1: an admin key manages the API keys of its own project."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from loopline.models import ApiKeyRequest, ApiKeyView, NewApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=DocumentedRoute)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(request: ApiKeyRequest, svc: Svc, who: Who) -> NewApiKey:
    """A new key of this project. Its `key` is in this answer only; keep it safe."""
    return await svc.keys.create(who, request)


@router.get("")
async def list_keys(svc: Svc, who: Who) -> list[ApiKeyView]:
    """This project's keys, revoked ones included, oldest first (never their secrets)."""
    return await svc.keys.list(who)


@router.delete("/{key_id}")
async def revoke_key(key_id: str, svc: Svc, who: Who) -> ApiKeyView:
    """Revoke a key of this project; requests with it get 401 from now on."""
    return await svc.keys.revoke(who, key_id)
