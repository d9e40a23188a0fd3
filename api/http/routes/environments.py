"""Native API v1: the environments this deployment serves."""

from __future__ import annotations

from fastapi import APIRouter

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from loopline.models import EnvironmentInfo

router = APIRouter(prefix="/v1/environments", tags=["environments"], route_class=DocumentedRoute)


@router.get("")
async def list_environments(svc: Svc, who: Who) -> list[EnvironmentInfo]:
    """Environments with their scenarios (argument schemas) and tools. A remote one says
    where it is served and whether its server answered (`remote.reachable`, `remote.error`)."""
    return await svc.environments.list(who)


@router.get("/{name}")
async def get_environment(name: str, svc: Svc, who: Who) -> EnvironmentInfo:
    return await svc.environments.get(who, name)
