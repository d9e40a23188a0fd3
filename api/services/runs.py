"""Runs: starting them durably, and reading them, their events and their logs.

Accepted means durable. A run is written pending, then its workflow is started; if Temporal
refuses the start, the row is removed and the caller told to try again. If the API stops in
between, the reconciler (api/services/reconciler.py) starts the workflow of every pending
row or ends the row failed, saying why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from api.services.access import Access, Caller, Need
from api.services.errors import Busy, Conflict, Invalid
from api.services.live import LiveEvents
from api.services.requests import ResolvedRun, resolve, run_input
from api.services.tasks import find_task, run_of_task
from api.services.tasksets import TasksetService
from api.services.workflows import StartRefused, Workflows
from loopline.environment.registry import Registry
from loopline.models import (
    EventFilter,
    EventType,
    EventView,
    RunPage,
    RunRequest,
    RunSpec,
    RunStatus,
    RunView,
    Scope,
    TaskDefinition,
    TaskEnvironment,
    TasksetUpload,
    TasksetView,
)
from loopline.models.lineage import RunOrigin
from loopline.secrets import SecretBox
from loopline.store import Stores, TasksetNotFoundError
from loopline.store.rows import NewRun
from loopline.store.tasksets import job_id_for
from loopline.store.trace import RunFilter

WAITING_FOR_CALLER = frozenset({RunStatus.awaiting_input, RunStatus.idle})
LISTING_TEXTS = (
    "environment",
    "scenario",
    "batch_id",
    "model",
    "taskset_id",
    "tag",
    "run_id_prefix",
)
MAX_FILTER_CHARS = 200
# Run ids have at most 64 characters (RUN_ID_PATTERN).
MAX_PREFIX_CHARS = 64
MAX_REWARD_BOUND = 1e12
LOG_PAGE = 1000
# How many task slugs an error lists.
SHOWN_SLUGS = 20


@dataclass(frozen=True)
class RunSettings:
    task_queue: str
    session_history_limit: int
    # Runs of a project in flight at once (batches' aside); 0: no limit.
    max_active_runs: int = 0


@dataclass(frozen=True)
class RunListing:
    """What a run listing may filter on; `task` is a task reference (see find_task)."""

    environment: str | None = None
    scenario: str | None = None
    status: RunStatus | None = None
    batch_id: str | None = None
    task: str | None = None
    model: str | None = None
    taskset_id: str | None = None
    tag: str | None = None
    min_reward: float | None = None
    max_reward: float | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    run_id_prefix: str | None = None


@dataclass(frozen=True)
class CallerFields:
    """Fields the caller owns that a run may start with, written with it."""

    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lineage:
    """What a run made from a recorded run carries: its parent, the steps it plays from
    the recording, and the job that a fork's rollouts share."""

    origin: RunOrigin
    recorded_steps: int
    job_id: str | None = None
    rollout: int | None = None

    def spec_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"origin": self.origin, "recorded_steps": self.recorded_steps}
        if self.job_id is not None:
            fields.update(batch_id=self.job_id, rollout=self.rollout)
        return fields


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclass
class RunService:
    stores: Stores
    access: Access
    workflows: Workflows
    registry: Registry
    secrets: SecretBox
    live: LiveEvents
    tasksets: TasksetService
    settings: RunSettings

    # --- starting ------------------------------------------------------------------------------

    async def start_run(
        self,
        caller: Caller,
        request: RunRequest,
        *,
        task: str | None = None,
        fields: CallerFields | None = None,
        job: bool | None = None,
        lineage: Lineage | None = None,
    ) -> tuple[RunView, bool]:
        """Start a run, or return the one already started with this run id and body (in the
        same project: another project's run id is a conflict, never an answer). `task` is
        the slug of the task of `request.taskset` the run plays. `job`: whether the run
        belongs to a job (its taskset's, or one of its own); unset: if it has a taskset.
        `lineage`: the recorded run it is made from. Returns whether it is new."""
        project = self.access.project(caller, Scope.task_write)
        # What the run plays; the request asked for stays its identity (and gives the
        # limits run_input reads, which a task does not set).
        played = await self._played(request, project)
        resolved = await asyncio.to_thread(resolve, played, self.registry)
        spec = resolved.spec.model_copy(update={"project": project, "task": played.task or task})
        run_id = request.run_id or uuid.uuid4().hex
        spec = await self._join_taskset(spec, request.taskset, job)
        spec = await self._with_lineage(spec, lineage)
        spec = await self._own_job(spec, run_id, job)
        await self._check_capacity(project, request.run_id)
        new = self._new_run(run_id, spec, request, resolved, fields, job)
        existing = await self.stores.runs.create_run(new)
        if existing is not None and existing != new.identity_hash:
            raise Conflict(
                f"run id {run_id!r} is already used by a run with a different request; "
                "choose another run_id or repeat the original request exactly"
            )
        if existing is None:
            await self._start_workflow(new)
        if request.sync:
            await self.workflows.wait(run_id, request.timeout)
        return self._view(await self.stores.runs.get_run(run_id)), existing is None

    async def start_as_task(
        self, caller: Caller, request: RunRequest, *, job: bool | None = None
    ) -> tuple[RunView, bool]:
        """Start a run of `request.taskset` whose scenario and args also become one of its
        tasks, named by their content so that the same run again finds the same task."""
        if request.taskset is None:
            return await self.start_run(caller, request, job=job)
        project = self.access.project(caller, Scope.task_write)
        try:
            taskset = await self.stores.tasksets.taskset(request.taskset, project)
        except TasksetNotFoundError as error:
            raise Invalid(["body", "taskset"], str(error)) from error
        content = json.dumps([request.environment, request.scenario, request.args], sort_keys=True)
        slug = f"run-{hashlib.sha256(content.encode()).hexdigest()[:16]}"
        task = TaskDefinition(
            slug=slug,
            scenario=request.scenario,
            args=request.args,
            env=TaskEnvironment(name=request.environment),
        )
        await self.tasksets.upload(caller, TasksetUpload(name=taskset.name, tasks=[task]))
        return await self.start_run(caller, request, task=slug, job=job)

    async def find_task(self, caller: Caller, ref: str) -> tuple[TasksetView, TaskDefinition]:
        """A task by `taskset:slug`, or by its slug alone when one taskset has it."""
        project = self.access.project(caller, Scope.task_read)
        return await find_task(self.stores.tasksets, project, ref)

    async def start_task_run(
        self,
        caller: Caller,
        ref: str,
        options: dict[str, Any],
        fields: CallerFields | None = None,
    ) -> tuple[RunView, bool]:
        """Start a run of a taskset's task; `options` are the run request's other fields,
        `fields` what the caller sets on the run as it starts (stage, branch, ...)."""
        taskset, task = await self.find_task(caller, ref)
        request = RunRequest(**options, taskset=taskset.taskset_id, task=task.slug)
        return await self.start_run(caller, request, fields=fields)

    # --- reading -------------------------------------------------------------------------------

    async def get_run(
        self,
        caller: Caller,
        run_id: str,
        *,
        include_trajectory: bool = False,
        include_state: bool = False,
    ) -> RunView:
        view = self._view(await self.access.run(caller, run_id, Need.read))
        if include_trajectory:
            view.trajectory = await self.stores.runs.events(run_id)
        if include_state:
            view.state = await self.stores.runs.load_state(run_id)
        return view

    async def watch_run(self, caller: Caller, run_id: str) -> RunView:
        """The run as the watchers of its events see it (a connection token may)."""
        return self._view(await self.access.run(caller, run_id, Need.events))

    async def list_runs(
        self, caller: Caller, listing: RunListing, *, limit: int, offset: int
    ) -> RunPage:
        """Runs of the caller's project, newest first (a batch's: in the order it starts them)."""
        project = self.access.project(caller, Scope.task_read)
        listing = checked_listing(listing)
        task = None
        if listing.task is not None:
            taskset, definition = await self.find_task(caller, listing.task)
            task = (taskset.taskset_id, definition.slug or "")
        where = RunFilter(
            project=project,
            environment=listing.environment,
            scenario=listing.scenario,
            status=listing.status,
            batch_id=listing.batch_id,
            task=task,
            model=listing.model,
            taskset_id=listing.taskset_id,
            tag=listing.tag,
            min_reward=listing.min_reward,
            max_reward=listing.max_reward,
            created_after=listing.created_after,
            created_before=listing.created_before,
            run_id_prefix=listing.run_id_prefix,
        )
        total, views = await self.stores.runs.list_runs(where, limit=limit, offset=offset)
        return RunPage(total=total, limit=limit, offset=offset, runs=[self._view(v) for v in views])

    async def statuses(self, caller: Caller, run_ids: list[str]) -> dict[str, RunView]:
        """Many runs of the caller's project in one read; ids it cannot see are left out."""
        project = self.access.project(caller, Scope.task_read)
        return await self.stores.runs.runs_by_id(list(dict.fromkeys(run_ids)), project)

    async def events(self, caller: Caller, run_id: str, where: EventFilter) -> list[EventView]:
        await self.access.run(caller, run_id, Need.events)
        return await self.stores.runs.events(run_id, where)

    async def log_events(
        self, caller: Caller, run_id: str, where: EventFilter
    ) -> AsyncIterator[EventView]:
        """The run's log events, oldest first, read a page at a time as they are sent."""
        await self.access.run(caller, run_id, Need.events)
        return self._pages(run_id, where)

    async def _pages(self, run_id: str, where: EventFilter) -> AsyncIterator[EventView]:
        after = where.after
        while True:
            page_filter = EventFilter(
                after=after,
                limit=LOG_PAGE,
                types=(EventType.log,),
                since=where.since,
                until=where.until,
            )
            page = await self.stores.runs.events(run_id, page_filter)
            for event in page:
                yield event
            if len(page) < LOG_PAGE:
                return
            after = page[-1].seq

    async def wait_for_turn(self, caller: Caller, run_id: str, seconds: float) -> RunView:
        """The run once it has ended or waits for its caller (client tool results, or a
        session's next message), or as it is after `seconds`."""
        view = await self.access.run(caller, run_id, Need.events)
        if not _turn_over(view.status):
            await self.live.until_status(run_id, _turn_over, seconds)
        return self._view(await self.stores.runs.get_run(run_id))

    # --- helpers -------------------------------------------------------------------------------

    def _new_run(
        self,
        run_id: str,
        spec: RunSpec,
        request: RunRequest,
        resolved: ResolvedRun,
        fields: CallerFields | None,
        job: bool | None,
    ) -> NewRun:
        settings = self.settings
        identity = {**request.identity(), "project": spec.project}
        if job is not None:  # unset keeps the identities of runs from before it existed
            identity["job"] = job
        if spec.origin is not None:
            identity["origin"] = spec.origin.model_dump(mode="json")
        return NewRun(
            run_id=run_id,
            identity_hash=identity_hash(identity),
            spec=spec,
            run_input=run_input(
                run_id, spec, request, settings.session_history_limit, settings.task_queue
            ),
            sealed_secrets=self.secrets.seal(resolved.secrets),
            sealed_callback=self.secrets.seal(resolved.callback_secrets),
            caller_fields=fields.values if fields else {},
        )

    async def _start_workflow(self, new: NewRun) -> None:
        spec = new.spec
        assert new.run_input is not None
        summary = f"{spec.environment}/{spec.scenario} · {spec.model}"
        start = Workflows.run_start(new.run_input, new.incarnation, summary)
        try:
            await self.workflows.start(start)
        except StartRefused as refused:
            if not refused.maybe_started:
                await self.stores.runs.delete_run(new.run_id)
                raise
        except Conflict:
            await self.stores.runs.delete_run(new.run_id)
            raise

    async def _played(self, request: RunRequest, project: str) -> RunRequest:
        """The request as it is run: itself, or that of the task it names of its taskset."""
        if request.task is None:
            _check_named(request)
            return request
        if request.taskset is None:
            raise Invalid(
                ["body", "task"],
                f"task {request.task!r} names a task of a taskset: give taskset too (its id "
                "or name), or leave out task and give environment and scenario",
            )
        try:
            found = await self.stores.tasksets.taskset(request.taskset, project, with_tasks=True)
        except TasksetNotFoundError as error:
            raise Invalid(["body", "taskset"], str(error)) from error
        by_slug = {view.slug: view.task for view in found.tasks or []}
        task = by_slug.get(request.task)
        if task is None:
            slugs = list(by_slug)
            shown = ", ".join(slugs[:SHOWN_SLUGS]) + (" ..." if len(slugs) > SHOWN_SLUGS else "")
            raise Invalid(
                ["body", "task"],
                f"taskset {found.name!r} has no task {request.task!r}; its tasks: "
                f"{shown or 'none yet'}",
            )
        return run_of_task(request, task, found.taskset_id)

    async def _join_taskset(self, spec: RunSpec, taskset: str | None, job: bool | None) -> RunSpec:
        """A run started with a taskset joins the taskset's job (its standing batch),
        unless it is to belong to no job."""
        if taskset is None:
            return spec
        try:
            found = await self.stores.tasksets.taskset(taskset, spec.project)
        except TasksetNotFoundError as error:
            raise Invalid(["body", "taskset"], str(error)) from error
        if job is False:
            return spec.model_copy(update={"taskset_id": found.taskset_id})
        job_id = job_id_for(found.taskset_id)
        await self.stores.batches.ensure_job(job_id, found.taskset_id, spec.project)
        return spec.model_copy(update={"taskset_id": found.taskset_id, "batch_id": job_id})

    async def _check_capacity(self, project: str, run_id: str | None) -> None:
        """Back-pressure: a project with as many runs in flight as it may starts no more
        (a retry of a run it has already accepted still finds it)."""
        limit = self.settings.max_active_runs
        if not limit or await self.stores.runs.active_runs(project) < limit:
            return
        if run_id is not None and await self.stores.runs.has_run(run_id):
            return
        raise Busy(
            f"project {project!r} has {limit} runs pending or running, as many as "
            "LOOPLINE_MAX_ACTIVE_RUNS allows: retry after Retry-After seconds, as runs end"
        )

    async def _with_lineage(self, spec: RunSpec, lineage: Lineage | None) -> RunSpec:
        if lineage is None:
            return spec
        if lineage.job_id is not None:
            await self.stores.batches.ensure_job(lineage.job_id, None, spec.project)
        return spec.model_copy(update=lineage.spec_fields())

    async def _own_job(self, spec: RunSpec, run_id: str, job: bool | None) -> RunSpec:
        """A run asked to belong to a job that has none (no taskset) gets one of its own,
        named after it, so that the same request again finds the same job."""
        if not job or spec.batch_id is not None:
            return spec
        job_id = own_job_id(run_id)
        await self.stores.batches.ensure_job(job_id, None, spec.project)
        return spec.model_copy(update={"batch_id": job_id})

    def _view(self, view: RunView) -> RunView:
        view.temporal_ui_url = self.workflows.ui_link(view.workflow_id)
        return view


def _check_named(request: RunRequest) -> None:
    """A run that plays no task names its environment and scenario."""
    for name in ("environment", "scenario"):
        if not getattr(request, name):
            raise Invalid(
                ["body", name],
                f"{name} is required: give environment and scenario, or taskset and the "
                "slug of one of its tasks as task",
            )


def own_job_id(run_id: str) -> str:
    """The id of a run's own job; a batch id has at most 64 characters, as a run id has."""
    if len(run_id) <= MAX_PREFIX_CHARS - len("job-"):
        return f"job-{run_id}"
    return f"job-{hashlib.sha256(run_id.encode()).hexdigest()[:40]}"


def checked_listing(listing: RunListing) -> RunListing:
    """The listing with its bounds checked (what no run can match is refused, saying why)
    and its times in UTC: a time without a zone is taken as UTC."""
    for name in LISTING_TEXTS:
        value = getattr(listing, name)
        limit = MAX_PREFIX_CHARS if name == "run_id_prefix" else MAX_FILTER_CHARS
        if value is not None and (len(value) > limit or not value.isprintable()):
            raise Invalid(["query", name], f"{name} must be printable text of at most {limit}")
    for name in ("min_reward", "max_reward"):
        value = getattr(listing, name)
        if value is not None and not (math.isfinite(value) and abs(value) <= MAX_REWARD_BOUND):
            raise Invalid(["query", name], f"{name} must be a number within ±{MAX_REWARD_BOUND:g}")
    return replace(
        listing,
        created_after=_utc("created_after", listing.created_after),
        created_before=_utc("created_before", listing.created_before),
    )


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise Invalid(["query", name], f"{name} is out of the range of dates") from error


def _turn_over(status: RunStatus) -> bool:
    return status.is_final or status in WAITING_FOR_CALLER
