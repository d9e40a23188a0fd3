"""The environments this deployment serves: in-process ones and remote ones, each remote
one asked (briefly) for its tools."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from api.services.access import Access, Caller
from api.services.errors import NotFound
from loopline.environment.registry import Registry, UnknownEnvironmentError
from loopline.models import EnvironmentInfo, Scope


@dataclass
class EnvironmentService:
    registry: Registry
    access: Access

    async def list(self, caller: Caller) -> list[EnvironmentInfo]:
        self.access.project(caller, Scope.task_read)
        local = [environment.info() for environment in self.registry.all()]
        remote = await asyncio.gather(*(env.describe() for env in self.registry.remotes()))
        return sorted([*local, *remote], key=lambda info: info.name)

    async def get(self, caller: Caller, name: str) -> EnvironmentInfo:
        self.access.project(caller, Scope.task_read)
        try:
            remote = self.registry.remote(name)
        except UnknownEnvironmentError as error:
            raise NotFound(str(error)) from error
        if remote is not None:
            return await remote.describe()
        return self.registry.environment(name).info()
