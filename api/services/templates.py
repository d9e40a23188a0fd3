"""Templates, as the rollout API names what its task ids belong to: a taskset (the task ids
are its slugs), an environment (the task ids are its scenarios), or one scenario of an
environment ('environment/scenario' or a scenario id; the task ids name its tasks, which
play it with the args a task override gives, else none)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import ValidationError

from api.services.access import Access, Caller
from api.services.environments import EnvironmentService
from api.services.errors import Invalid, NotFound
from loopline.models import Scope, TaskDefinition, TaskEnvironment
from loopline.store import TasksetNotFoundError, TasksetStore


@dataclass(frozen=True)
class TemplateTasks:
    """A batch's tasks: a taskset's (by id), or inline ones."""

    taskset: str | None = None
    tasks: list[TaskDefinition] | None = None


@dataclass
class TemplateService:
    tasksets: TasksetStore
    environments: EnvironmentService
    access: Access

    async def tasks(self, caller: Caller, template: str, task_ids: list[str]) -> TemplateTasks:
        """The tasks `task_ids` name in `template`; a taskset of that name or id first.
        Asked to launch them, so the caller must be one who may (task:write)."""
        project = self.access.project(caller, Scope.task_write)
        try:
            found = await self.tasksets.taskset(template, project)
        except TasksetNotFoundError:
            pass
        else:
            return TemplateTasks(taskset=found.taskset_id)
        if _names_a_scenario(template):
            named = await self.environments.scenario(caller, template, ["body", "scenario_id"])
            pairs = [(named.environment, named.scenario) for _ in task_ids]
        else:
            _check_ids(template, task_ids, set(await self._scenarios(caller, template)))
            pairs = [(template, task_id) for task_id in task_ids]
        return TemplateTasks(tasks=[_task(i, pair, task_ids[i]) for i, pair in enumerate(pairs)])

    async def _scenarios(self, caller: Caller, environment: str) -> list[str]:
        try:
            info = await self.environments.get(caller, environment)
        except NotFound:
            raise Invalid(
                ["body", "scenario_id"],
                f"no template {environment!r}: name a taskset, an environment, or one "
                "scenario as 'environment/scenario' (or its id)",
            ) from None
        return [scenario.name for scenario in info.scenarios]


def _names_a_scenario(template: str) -> bool:
    if "/" in template or ":" in template:
        return True
    try:
        uuid.UUID(template)
    except ValueError:
        return False
    return True


def _check_ids(environment: str, task_ids: list[str], scenarios: set[str]) -> None:
    unknown = [task_id for task_id in task_ids if task_id not in scenarios]
    if unknown:
        raise Invalid(
            ["body", "task_ids"],
            f"environment {environment!r} has no scenario {', '.join(map(repr, unknown))}; "
            f"its scenarios: {', '.join(sorted(scenarios))}",
        )


def _task(index: int, pair: tuple[str, str], task_id: str) -> TaskDefinition:
    environment, scenario = pair
    try:
        return TaskDefinition(
            slug=task_id, scenario=scenario, env=TaskEnvironment(name=environment)
        )
    except ValidationError as error:
        raise Invalid(["body", "task_ids", index], error.errors()[0]["msg"]) from None
