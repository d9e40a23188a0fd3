"""Tasks as run requests: a task (with a batch's overrides) becomes the RunRequest of each of
its rollouts, and is checked against the environments by the same resolution as a run.

Which script a rollout plays is decided here, in `script_cycle`, for batches and runs alike:
the most specific source that has one wins (a batch's task_overrides or a run's own
script, then the task's own, then the batch's), and within a source its rollout_scripts
win over its script.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from api.services.errors import Conflict, Invalid, NotFound
from api.services.requests import ResolvedRun, resolve
from loopline.environment.registry import Registry
from loopline.models import (
    SCRIPTED_MODEL,
    EvaluationConfig,
    ModelConfig,
    Provider,
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
# The run request's fields a task sets, which a run of the task may leave out or repeat,
# but not contradict; its others are the run's own.
TASK_OWNED = ("environment", "scenario", "args", "prompt", "include_tools", "exclude_tools")
# Set by the task unless the run sets its own.
TASK_DEFAULTS = ("tags", "metadata")
# Checking a task needs a model; the offline one with a one-line script stands in.
PLACEHOLDER_SCRIPT = Script(steps=[ScriptedStep(content="")])
# How much of a contradicting value an error repeats.
SHOWN_CHARS = 200


class ScriptSource(Protocol):
    """Something that may say what model 'scripted' plays: a task, an override, a batch."""

    @property
    def script(self) -> Script | None: ...

    @property
    def rollout_scripts(self) -> list[Script] | None: ...


@dataclass(frozen=True)
class OwnScript:
    """A run's own script, which wins over its task's as a batch's task override does."""

    script: Script | None
    rollout_scripts: list[Script] | None = None


def script_cycle(*sources: ScriptSource | None) -> list[Script | None]:
    """The scripts rollout r plays, as r mod n, from the first of `sources` (most specific
    first) that has one; `[None]` when none has."""
    for source in sources:
        if source is None:
            continue
        if source.rollout_scripts:
            return list(source.rollout_scripts)
        if source.script is not None:
            return [source.script]
    return [None]


def is_scripted(model: str | ModelConfig) -> bool:
    try:
        return parse_model(model).provider is Provider.scripted
    except ValueError:
        return False  # resolving the run says what is wrong with the model


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
    task: TaskDefinition, /, *, model: str | ModelConfig, **run_fields: Any
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


def run_of_task(request: RunRequest, task: TaskDefinition, taskset_id: str) -> RunRequest:
    """The run request of a run that plays `task` of a taskset (request.task): what the
    task sets is the task's, and what the request also sets must agree with it."""
    given = request.model_fields_set
    own = {
        name: getattr(request, name)
        for name in given
        if name not in (*TASK_OWNED, *TASK_DEFAULTS, "task", "taskset", "script")
    }
    if "model" not in own:
        own["model"] = (task.agent_config and task.agent_config.model) or request.model
    script = script_cycle(OwnScript(request.script), task)[0]
    if script is None and is_scripted(own["model"]):
        raise Invalid(
            ["body", "script"],
            f"model 'scripted' needs a script, and task {task.slug!r} has none of its own: "
            "send script with the run, or give the task a script or rollout_scripts",
        )
    played = task_request(
        task,
        **own,
        script=script,
        taskset=taskset_id,
        task=task.slug,
    )
    _check_agrees(request, played, task.slug or "")
    # Checked as the request's fields already.
    return played.model_copy(
        update={name: getattr(request, name) for name in TASK_DEFAULTS if name in given}
    )


def _check_agrees(request: RunRequest, played: RunRequest, slug: str) -> None:
    """A field the task sets that the request also sets must have the task's value."""
    given = request.model_fields_set
    pairs = [([name], getattr(request, name), getattr(played, name)) for name in TASK_OWNED]
    if "evaluation" in given:
        pairs += [
            (
                ["evaluation", name],
                getattr(request.evaluation, name),
                getattr(played.evaluation, name),
            )
            for name in ("validation", "rubric")
            if name in request.evaluation.model_fields_set
        ]
    for path, value, own in pairs:
        if path[0] in given and value != own:
            field = ".".join(path)
            shown = json.dumps(to_jsonable_python(own))[:SHOWN_CHARS]
            raise Invalid(
                ["body", *path],
                f"task {slug!r} has {field} {shown}, and a run of the task plays it as it "
                f"is: leave {field} out (or repeat the task's), or leave out task",
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
