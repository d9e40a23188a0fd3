"""The environments this deployment serves: in-process ones and remote ones, each remote
one asked (briefly) for its tools."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from api.services.access import Access, Caller
from api.services.errors import Invalid, NotFound
from loopline.environment.registry import Registry, UnknownEnvironmentError
from loopline.models import EnvironmentInfo, Scope

# The namespace of scenario ids (uuid5 of 'environment/scenario'); never to change.
SCENARIO_NAMESPACE = uuid.UUID("5a1c07e2-3b0d-4f7e-9a51-6c0f1e2d9b47")
# Where in a request a refused scenario reference was (`list` is a method of the service).
Loc = list[str | int]


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

    async def scenario(self, caller: Caller, ref: str, loc: Loc) -> ScenarioRef:
        """The scenario `ref` names: its id (a UUID, see scenario_id), or
        'environment/scenario' (also 'environment:scenario'); an Invalid at `loc` if none."""
        try:
            wanted = str(uuid.UUID(ref))
        except ValueError:
            return _named_scenario(ref, loc)
        for info in await self.list(caller):
            for scenario in info.scenarios:
                if scenario_id(info.name, scenario.name) == wanted:
                    return ScenarioRef(info.name, scenario.name)
        raise Invalid(
            loc,
            f"no scenario has the id {ref!r}; the environments listing gives each scenario's id, "
            "or name it as 'environment/scenario'",
        )


@dataclass(frozen=True)
class ScenarioRef:
    environment: str
    scenario: str


def scenario_id(environment: str, scenario: str) -> str:
    """A scenario's stable id: the same environment and scenario name, the same UUID, on
    every deployment (no table to keep)."""
    return str(uuid.uuid5(SCENARIO_NAMESPACE, f"{environment}/{scenario}"))


def _named_scenario(ref: str, loc: Loc) -> ScenarioRef:
    environment, _, scenario = ref.replace(":", "/").partition("/")
    if not environment or not scenario:
        raise Invalid(
            loc, f"{ref!r} names no scenario: give a scenario's id or 'environment/scenario'"
        )
    return ScenarioRef(environment, scenario)
