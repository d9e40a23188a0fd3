"""The environments this deployment serves: in-process ones and remote ones, each remote
one asked (briefly) for its tools."""

from __future__ import annotations

import asyncio

from api.services.access import Access, Caller
from api.services.errors import NotFound
from loopline.environment.registry import Registry, UnknownEnvironmentError
from loopline.models import EnvironmentInfo, Scope


class EnvironmentService:
    def __init__(self, registry: Registry, access: Access) -> None:
        self._registry = registry
        self._access = access

    async def list(self, caller: Caller) -> list[EnvironmentInfo]:
        self._access.project(caller, Scope.task_read)
        local = [environment.info() for environment in self._registry.all()]
        remote = await asyncio.gather(*(env.describe() for env in self._registry.remotes()))
        return sorted([*local, *remote], key=lambda info: info.name)

    async def get(self, caller: Caller, name: str) -> EnvironmentInfo:
        self._access.project(caller, Scope.task_read)
        try:
            remote = self._registry.remote(name)
        except UnknownEnvironmentError as error:
            raise NotFound(str(error)) from error
        if remote is not None:
            return await remote.describe()
        return self._registry.environment(name).info()
