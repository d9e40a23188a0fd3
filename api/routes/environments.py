"""Native API v1: the environments this deployment serves."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import Service
from loopline.models import EnvironmentInfo
from loopline.registry import UnknownEnvironmentError

router = APIRouter(prefix="/v1/environments", tags=["environments"])


@router.get("")
async def list_environments(service: Service) -> list[EnvironmentInfo]:
    """Environments with their scenarios (argument schemas) and tools. A remote one says
    where it is served and whether its server answered (`remote.reachable`, `remote.error`)."""
    return await service.environments()


@router.get("/{name}")
async def get_environment(name: str, service: Service) -> EnvironmentInfo:
    try:
        return await service.environment(name)
    except UnknownEnvironmentError as error:
        raise HTTPException(status_code=404, detail=str(error)) from error
