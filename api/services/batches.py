"""Batches: tasks times rollout_count runs, created together, started by a batch workflow."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from api.services.access import Access, Caller
from api.services.errors import Conflict, Invalid
from api.services.requests import ResolvedRun, run_input
from api.services.runs import RunSettings, identity_hash
from api.services.tasks import (
    apply_override,
    is_scripted,
    resolve_task,
    script_cycle,
    task_request,
)
from api.services.workflows import StartRefused, Workflows
from loopline.blobs import BlobStore
from loopline.environment.registry import Registry
from loopline.models import (
    MAX_ROLLOUTS,
    BatchCancelResult,
    BatchDeleteResult,
    BatchKind,
    BatchPage,
    BatchRequest,
    BatchStatus,
    BatchView,
    CancelRequest,
    EvaluationConfig,
    RunPage,
    RunRequest,
    RunStatus,
    RunView,
    Scope,
    Script,
    TaskDefinition,
)
from loopline.scoring import ACTIVE, count_statuses, score
from loopline.secrets import SecretBox
from loopline.store import Stores, TasksetNotFoundError
from loopline.store.batches import BatchFilter, BatchRecord, NewBatch
from loopline.store.rows import NewRun
from loopline.store.trace import RunFilter
from workflows.contract.names import CANCEL_SIGNAL, batch_workflow_id, run_workflow_id
from workflows.contract.payloads import BatchInput

RUN_PAGE = 1000
# How many task slugs an error lists before it counts the rest.
SHOWN_SLUGS = 20


@dataclass(frozen=True)
class BatchListing:
    """What a batch listing may filter on besides the taskset."""

    status: BatchStatus | None = None
    kind: BatchKind | None = None
    source: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a batch's runs belong."""

    project: str
    taskset_id: str | None
    batch_id: str


@dataclass
class BatchService:
    stores: Stores
    access: Access
    workflows: Workflows
    registry: Registry
    secrets: SecretBox
    blobs: BlobStore
    settings: RunSettings

    async def start_batch(self, caller: Caller, request: BatchRequest) -> tuple[BatchView, bool]:
        """Create the batch and all its runs, then start its workflow; repeating a request
        with the same batch_id (in the same project) returns the batch instead."""
        project = self.access.project(caller, Scope.task_write)
        tasks, taskset_id = await self._tasks(request, project)
        batch_id = request.batch_id or uuid.uuid4().hex
        # Thousands of runs take a while to build: off the event loop that serves the API.
        new_runs = await asyncio.to_thread(
            self._new_runs, request, tasks, Placement(project, taskset_id, batch_id)
        )
        identity = identity_hash({**request.identity(), "project": project})
        batch = NewBatch(
            batch_id=batch_id,
            identity_hash=identity,
            name=request.name,
            taskset_id=taskset_id,
            model=new_runs[0].spec.model,
            rollout_count=request.rollout_count,
            max_parallel=request.max_parallel,
            total=len(new_runs),
            metadata=request.metadata,
            project=project,
            source=request.source,
        )
        existing = await self.stores.batches.create(batch, new_runs)
        if existing is not None and existing != identity:
            raise Conflict(
                f"batch id {batch_id!r} is already used by a batch with a different request; "
                "choose another batch_id or repeat the original request exactly"
            )
        if existing is None:
            await self._start_workflow(batch, request)
        return await self._view(await self.stores.batches.get(batch_id), True), existing is None

    async def get_batch(
        self, caller: Caller, batch_id: str, *, include_runs: bool = True
    ) -> BatchView:
        record = await self.access.batch(caller, batch_id, Scope.task_read)
        return await self._view(record, include_runs)

    async def list_batches(
        self,
        caller: Caller,
        listing: BatchListing,
        *,
        taskset: str | None,
        include_runs: bool,
        limit: int,
        offset: int,
    ) -> BatchPage:
        """The caller's batches, newest first; `taskset` is an id or a name."""
        project = self.access.project(caller, Scope.task_read)
        taskset_id = None
        if taskset is not None:
            taskset_id = (await self.stores.tasksets.taskset(taskset, project)).taskset_id
        where = BatchFilter(
            project=project,
            status=listing.status,
            kind=listing.kind,
            taskset_id=taskset_id,
            source=listing.source,
        )
        total, records = await self.stores.batches.list_batches(where, limit=limit, offset=offset)
        views = [await self._view(record, include_runs) for record in records]
        return BatchPage(total=total, limit=limit, offset=offset, batches=views)

    async def runs(self, caller: Caller, batch_id: str, limit: int, offset: int) -> RunPage:
        """The batch's runs in full, in the order it starts them."""
        await self.access.batch(caller, batch_id, Scope.task_read)
        where = RunFilter(batch_id=batch_id)
        total, views = await self.stores.runs.list_runs(where, limit=limit, offset=offset)
        for view in views:
            view.temporal_ui_url = self.workflows.ui_link(view.workflow_id)
        return RunPage(total=total, limit=limit, offset=offset, runs=views)

    async def all_runs(self, caller: Caller, batch_id: str) -> list[RunView]:
        """Every run of the batch, in the order it starts them."""
        runs: list[RunView] = []
        while page := (await self.runs(caller, batch_id, RUN_PAGE, len(runs))).runs:
            runs.extend(page)
            if len(page) < RUN_PAGE:
                break
        return runs

    async def cancel_batch(
        self, caller: Caller, batch_id: str, request: CancelRequest
    ) -> BatchCancelResult:
        """Stop the batch gracefully: no new runs, active ones cancelled (teardown runs)."""
        record = await self.access.batch(caller, batch_id, Scope.task_write)
        outcomes = (await self.stores.batches.outcomes(batch_id)).outcomes
        unfinished = [o for o in outcomes if o.status in ACTIVE or o.status is RunStatus.pending]
        if record.kind is BatchKind.job:
            for outcome in unfinished:
                await self._cancel(run_workflow_id(outcome.run_id), request)
            return BatchCancelResult(batch_id=batch_id, cancelled_runs=len(unfinished))
        if record.status.is_final:
            raise Conflict(f"batch {batch_id!r} has already ended ({record.status.value})")
        await self.stores.batches.request_cancel(batch_id)
        await self._cancel(batch_workflow_id(batch_id), request)
        return BatchCancelResult(batch_id=batch_id, cancelled_runs=len(unfinished))

    async def delete_batch(self, caller: Caller, batch_id: str) -> BatchDeleteResult:
        """Delete a batch that has ended, its runs and all their records and artifacts."""
        record = await self.access.batch(caller, batch_id, Scope.task_write)
        outcomes = (await self.stores.batches.outcomes(batch_id)).outcomes
        running = [o for o in outcomes if o.status in ACTIVE]
        if (record.kind is BatchKind.batch and not record.status.is_final) or running:
            raise Conflict(
                f"batch {batch_id!r} is still running ({len(running)} active runs): "
                f"POST /v1/batches/{batch_id}/cancel first, then delete it once it has ended"
            )
        deleted, paths = await self.stores.batches.delete(batch_id)
        await self.blobs.delete(paths)
        return BatchDeleteResult(batch_id=batch_id, deleted_runs=deleted)

    # --- helpers -------------------------------------------------------------------------------

    async def _tasks(
        self, request: BatchRequest, project: str
    ) -> tuple[list[TaskDefinition], str | None]:
        if (request.taskset is None) == (request.tasks is None):
            raise Invalid(
                ["body", "taskset"], "give either taskset (an id or name) or tasks, not both"
            )
        if request.tasks is not None:
            tasks = _with_slugs(request.tasks)
            taskset_id = None
        else:
            try:
                taskset = await self.stores.tasksets.taskset(request.taskset or "", project)
            except TasksetNotFoundError as error:
                raise Invalid(["body", "taskset"], str(error)) from error
            tasks = [view.task for view in await self.stores.tasksets.tasks(taskset.taskset_id)]
            taskset_id = taskset.taskset_id
        tasks = _selected(tasks, request.task_slugs)
        unknown = sorted(set(request.task_overrides) - {task.slug for task in tasks})
        if unknown:
            raise Invalid(
                ["body", "task_overrides"],
                f"task_overrides names tasks this batch does not run: {', '.join(unknown)}",
            )
        if not tasks:
            raise Conflict(f"taskset {request.taskset!r} has no tasks yet; upload some first")
        total = len(tasks) * request.rollout_count
        if total > MAX_ROLLOUTS:
            raise Invalid(
                ["body", "rollout_count"],
                f"{len(tasks)} tasks x {request.rollout_count} rollouts is {total} runs; a batch "
                f"runs at most {MAX_ROLLOUTS}: split it, or pick tasks with task_slugs",
            )
        return tasks, taskset_id

    def _new_runs(
        self,
        request: BatchRequest,
        tasks: list[TaskDefinition],
        placement: Placement,
    ) -> list[NewRun]:
        new_runs: list[NewRun] = []
        sealed: tuple[str | None, str | None] | None = None
        for index, (task, scripts) in enumerate(_with_scripts(request, tasks)):
            # Rollouts of a task differ only by script: each variant is resolved once.
            variants: dict[int, tuple[RunRequest, ResolvedRun]] = {}
            for rollout in range(request.rollout_count):
                variant = rollout % len(scripts)
                if variant not in variants:
                    fields = self._run_fields(request, scripts[variant])
                    run_request = task_request(task, **fields)
                    variants[variant] = (
                        run_request,
                        resolve_task(run_request, self.registry, task, ["body", "tasks", index]),
                    )
                run_request, resolved = variants[variant]
                if sealed is None:  # the same keys for every run: sealed once
                    sealed = (
                        self.secrets.seal(resolved.secrets),
                        self.secrets.seal(resolved.callback_secrets),
                    )
                spec = resolved.spec.model_copy(
                    update={
                        "project": placement.project,
                        "batch_id": placement.batch_id,
                        "taskset_id": placement.taskset_id,
                        "task": task.slug,
                        "rollout": rollout,
                    }
                )
                run_id = uuid.uuid4().hex
                new_runs.append(
                    NewRun(
                        run_id=run_id,
                        identity_hash=placement.batch_id,
                        spec=spec,
                        run_input=run_input(
                            run_id,
                            spec,
                            run_request,
                            self.settings.session_history_limit,
                            self.settings.task_queue,
                        ),
                        sealed_secrets=sealed[0],
                        sealed_callback=sealed[1],
                        batch_index=len(new_runs),
                    )
                )
        return new_runs

    @staticmethod
    def _run_fields(request: BatchRequest, script: Script | None) -> dict[str, Any]:
        return {
            "model": request.model,
            "provider_api_keys": request.provider_api_keys,
            "script": script,
            "user_model": request.user_model,
            "user_script": request.user_script,
            "max_steps": request.max_steps,
            "max_duration_seconds": request.max_duration_seconds,
            "callback": request.callback,
            "evaluation": EvaluationConfig(
                judge_model=request.judge_model, judge_script=request.judge_script
            ),
        }

    async def _start_workflow(self, batch: NewBatch, request: BatchRequest) -> None:
        start = Workflows.batch_start(
            BatchInput(
                batch_id=batch.batch_id,
                total=batch.total,
                max_parallel=batch.max_parallel,
                continue_as_new_after_events=self.settings.session_history_limit,
            ),
            batch.incarnation,
            batch.taskset_id,
            f"batch {request.name or batch.batch_id}: {batch.total} runs, "
            f"{batch.max_parallel} at once",
        )
        try:
            await self.workflows.start(start)
        except StartRefused as refused:
            if not refused.maybe_started:
                await self.stores.batches.delete(batch.batch_id)
                raise
        except Conflict:
            await self.stores.batches.delete(batch.batch_id)
            raise

    async def _cancel(self, workflow_id: str, request: CancelRequest) -> None:
        try:
            await self.workflows.signal(workflow_id, CANCEL_SIGNAL, request)
        except Conflict:
            return  # it has just ended: there is nothing left to stop

    async def _view(self, record: BatchRecord, include_runs: bool) -> BatchView:
        runs = await self.stores.batches.outcomes(record.batch_id)
        workflow_id = batch_workflow_id(record.batch_id) if record.kind is BatchKind.batch else None
        return BatchView(
            batch_id=record.batch_id,
            kind=record.kind,
            name=record.name,
            status=record.status,
            taskset_id=record.taskset_id,
            model=record.model,
            rollout_count=record.rollout_count,
            max_parallel=record.max_parallel,
            counts=count_statuses(runs.outcomes),
            scores=score(runs.outcomes),
            usage=runs.usage,
            run_ids=[o.run_id for o in runs.outcomes] if include_runs else None,
            cancel_requested=record.cancel_requested,
            metadata=record.metadata,
            source=record.source,
            workflow_id=workflow_id,
            temporal_ui_url=self.workflows.ui_link(workflow_id),
            created_at=record.created_at,
            ended_at=record.ended_at,
        )


def _with_scripts(
    request: BatchRequest, tasks: list[TaskDefinition]
) -> list[tuple[TaskDefinition, list[Script | None]]]:
    """Each task with its override applied, and the scripts its rollouts play in turn
    (see script_cycle for which win); for model 'scripted', every task must have some."""
    played = []
    for task in tasks:
        override = request.task_overrides.get(task.slug or "")
        task = apply_override(task, override)
        played.append((task, script_cycle(override, task, request)))
    lacking = [task.slug or "" for task, scripts in played if scripts == [None]]
    if lacking and is_scripted(request.model):
        shown = ", ".join(lacking[:SHOWN_SLUGS])
        more = f" and {len(lacking) - SHOWN_SLUGS} more" if len(lacking) > SHOWN_SLUGS else ""
        raise Invalid(
            ["body", "script"],
            f"model 'scripted' needs a script for every task, and these have none "
            f"({len(lacking)}): {shown}{more}. Give each a script or rollout_scripts (in "
            "the taskset or the inline task, or in task_overrides.<slug>), or give the "
            "batch a script or rollout_scripts for every task",
        )
    return played


def _with_slugs(tasks: list[TaskDefinition]) -> list[TaskDefinition]:
    """Inline tasks without a slug are numbered as a taskset upload would number them."""
    slugs = [task.slug for task in tasks if task.slug is not None]
    duplicated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    if duplicated:
        raise Invalid(
            ["body", "tasks"], f"slugs used by more than one task: {', '.join(duplicated)}"
        )
    return [
        task if task.slug is not None else task.model_copy(update={"slug": f"{index + 1:04d}"})
        for index, task in enumerate(tasks)
    ]


def _selected(tasks: list[TaskDefinition], slugs: list[str] | None) -> list[TaskDefinition]:
    if slugs is None:
        return tasks
    by_slug = {task.slug: task for task in tasks}
    unknown = [slug for slug in slugs if slug not in by_slug]
    if unknown:
        raise Invalid(
            ["body", "task_slugs"],
            f"no task {', '.join(map(repr, unknown))}; tasks: {', '.join(map(str, by_slug))}",
        )
    return [by_slug[slug] for slug in dict.fromkeys(slugs)]
