"""Tasks as run requests: a task (with a batch's overrides) becomes the RunRequest of each of
its rollouts, and is checked against the environments by the same resolution as a run."""

from __future__ import annotations

import contextlib
from typing import Any

from api.services.errors import Conflict, Invalid, NotFound
from api.services.requests import ResolvedRun, resolve
from loopline.environment.registry import Registry
from loopline.models import (
    SCRIPTED_MODEL,
    EvaluationConfig,
    ModelConfig,
    RunRequest,
    Script,
    ScriptedStep,
    TaskDefinition,
    TaskOverride,
    TasksetView,
    parse_model,
)
from loopline.store import TasksetStore

# Where the run request's fields that a task sets come from in the task, for error
# locations; the run request's other fields are the batch's.
TASK_FIELDS: dict[str, list[str | int]] = {
    "environment": ["env", "name"],
    "scenario": ["scenario"],
    "args": ["args"],
    "include_tools": ["env", "include"],
    "exclude_tools": ["env", "exclude"],
    "evaluation": [],
    "prompt": ["description"],
}
# Checking a task needs a model; the offline one with a one-line script stands in.
PLACEHOLDER_SCRIPT = Script(steps=[ScriptedStep(content="")])


def apply_override(task: TaskDefinition, override: TaskOverride | None) -> TaskDefinition:
    if override is None:
        return task
    base = override.task_json.model_copy(update={"slug": task.slug}) if override.task_json else task
    changes: dict[str, Any] = {}
    if override.name is not None:
        changes["name"] = override.name
    if override.description is not None:
        changes["description"] = override.description
    if override.rubric_markdown is not None:
        changes["rubric"] = override.rubric_markdown
    if override.client_context is not None:
        changes["metadata"] = {**base.metadata, "client_context": override.client_context}
    return base.model_copy(update=changes)


def task_request(
    task: TaskDefinition, *, model: str | ModelConfig, **run_fields: Any
) -> RunRequest:
    """The run request of one rollout of `task`; `run_fields` are the batch's own."""
    evaluation: EvaluationConfig = run_fields.pop("evaluation", EvaluationConfig())
    system_prompt = task.agent_config.system_prompt if task.agent_config else None
    if system_prompt:
        with contextlib.suppress(ValueError):  # resolution says what is wrong with the model
            model = parse_model(model).model_copy(update={"system_prompt": system_prompt})
    return RunRequest(
        environment=task.env.name,
        scenario=task.scenario,
        args=task.args,
        model=model,
        prompt=task.description,
        include_tools=task.env.include,
        exclude_tools=task.env.exclude,
        evaluation=evaluation.model_copy(
            update={"validation": task.validation or [], "rubric": task.rubric}
        ),
        tags=task.tags,
        metadata=task.metadata,
        **run_fields,
    )


def resolve_task(
    request: RunRequest, registry: Registry, task: TaskDefinition, loc: list[str | int]
) -> ResolvedRun:
    """Resolve a task's run request; what is wrong with the task is said at its own field,
    under `loc`, naming the task."""
    try:
        return resolve(request, registry)
    except Invalid as error:
        inner = error.loc[1:] if error.loc[:1] == ["body"] else error.loc
        field = str(inner[0]) if inner else ""
        if field not in TASK_FIELDS:
            raise
        raise Invalid(
            [*loc, *TASK_FIELDS[field], *inner[1:]], f"task {task.slug!r}: {error.message}"
        ) from error


def check_task(task: TaskDefinition, registry: Registry, loc: list[str | int]) -> None:
    """Resolve the task as a run would be, with a stand-in model; its own model, if it
    names one, must say its provider."""
    own = task.agent_config.model if task.agent_config else None
    if own is not None:
        try:
            parse_model(own)
        except ValueError as error:
            raise Invalid([*loc, "agent_config", "model"], str(error)) from None
    request = task_request(
        task.model_copy(update={"rubric": None}), model=SCRIPTED_MODEL, script=PLACEHOLDER_SCRIPT
    )
    resolve_task(request, registry, task, loc)


async def find_task(
    tasksets: TasksetStore, project: str, ref: str
) -> tuple[TasksetView, TaskDefinition]:
    """A task of the project by `taskset:slug`, or by its slug alone when one taskset has it."""
    name, colon, slug = ref.rpartition(":")
    if colon:
        found = await tasksets.taskset(name, project, with_tasks=True)
        for task_view in found.tasks or []:
            if task_view.slug == slug:
                return found.model_copy(update={"tasks": None}), task_view.task
        raise NotFound(f"taskset {name!r} has no task {slug!r}")
    matches = await tasksets.tasks_by_slug(ref, project)
    if not matches:
        raise NotFound(f"no task {ref!r}; name one as 'taskset:slug'")
    if len(matches) > 1:
        names = ", ".join(f"{view.name}:{ref}" for view, _ in matches)
        raise Conflict(f"several tasksets have a task {ref!r}; name one of {names}")
    [(taskset_view, only)] = matches
    return taskset_view, only.task
