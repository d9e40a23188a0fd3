"""The one service layer behind every router: validation, starting runs, reading them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ConflictError, InvalidRequestError, TaskNotFoundError, UnavailableError
from api.run_requests import resolve, run_input
from api.task_requests import task_request
from loopline.catalog import Catalog, TasksetNotFoundError
from loopline.models import (
    SCRIPTED_MODEL,
    AppendLogResult,
    CancelRequest,
    CloseRequest,
    ContinueAck,
    ContinueRequest,
    EnvironmentInfo,
    EventType,
    EventView,
    LogEntry,
    MessageAck,
    RelayAck,
    RelayMessage,
    RunInput,
    RunPage,
    RunPatch,
    RunRequest,
    RunSpec,
    RunStatus,
    RunView,
    TaskDefinition,
    TasksetView,
    UserMessage,
    UserMessageRequest,
)
from loopline.registry import Registry
from loopline.secrets import SecretBox
from loopline.store import TraceStore, workflow_id_for
from loopline.temporal import initial_search_attributes, ui_link
from workflows.relay import RelayWorkflow
from workflows.run import NOT_ACCEPTING, NOT_AWAITING, WRONG_TOOL_CALLS, RunWorkflow

T = TypeVar("T")
# How long a continue waits for a run the store shows awaiting_input to wait again in its
# workflow: a dead worker's workflow task times out after 10 s, then a new one replays it.
CONTINUE_GRACE_SECONDS = 30.0
CONTINUE_RETRY_SECONDS = 0.5
TURN_POLL_SECONDS = 0.1
WAITING_FOR_CALLER = frozenset({RunStatus.awaiting_input, RunStatus.idle})


class RunService:
    def __init__(
        self,
        store: TraceStore,
        catalog: Catalog,
        client: Client,
        registry: Registry,
        secrets: SecretBox,
        task_queue: str,
        temporal_ui_url: str | None,
        session_history_limit: int,
        relay_webhooks: dict[str, str],
    ) -> None:
        self._relay_webhooks = relay_webhooks
        self._store = store
        self._catalog = catalog
        self._client = client
        self._registry = registry
        self._secrets = secrets
        self._task_queue = task_queue
        self._temporal_ui_url = temporal_ui_url
        self._session_history_limit = session_history_limit

    # --- environments --------------------------------------------------------------------------

    async def environments(self) -> list[EnvironmentInfo]:
        """In-process environments and remote ones, each remote one asked for its tools."""
        local = [environment.info() for environment in self._registry.all()]
        remote = await asyncio.gather(*(env.describe() for env in self._registry.remotes()))
        return sorted([*local, *remote], key=lambda info: info.name)

    async def environment(self, name: str) -> EnvironmentInfo:
        remote = self._registry.remote(name)
        if remote is not None:
            return await remote.describe()
        return self._registry.environment(name).info()

    # --- runs ----------------------------------------------------------------------------------

    async def start_run(
        self, request: RunRequest, project: str, *, task: str | None = None
    ) -> tuple[RunView, bool]:
        """Start a run, or return the one already started with this run id and body (in the
        same project: another project's run id is a conflict, never an answer). `task` is
        the slug of the task of `request.taskset` the run plays."""
        resolved = resolve(request, self._registry)
        spec = resolved.spec.model_copy(update={"project": project, "task": task})
        spec = await self._join_taskset(spec, request.taskset)
        run_id = request.run_id or uuid.uuid4().hex
        identity = identity_hash({**request.identity(), "project": project})
        run = run_input(run_id, spec, request, self._session_history_limit, self._task_queue)
        existing_identity = await self._store.create_run(
            run_id,
            identity,
            spec,
            self._secrets.seal(resolved.secrets),
            run_input=run,
            sealed_callback=self._secrets.seal(resolved.callback_secrets),
        )
        if existing_identity is not None and existing_identity != identity:
            raise ConflictError(
                f"run id {run_id!r} is already used by a run with a different request; "
                "choose another run_id or repeat the original request exactly"
            )
        await self._start_workflow(run, spec)
        if request.sync:
            await self._wait(run_id, request.timeout)
        return await self.get_run(run_id), existing_identity is None

    async def find_task(self, ref: str, project: str) -> tuple[TasksetView, TaskDefinition]:
        """A task by `taskset:slug`, or by its slug alone when one taskset has it."""
        taskset, colon, slug = ref.rpartition(":")
        if colon:
            found = await self._catalog.taskset(taskset, project, with_tasks=True)
            for task_view in found.tasks or []:
                if task_view.slug == slug:
                    return found.model_copy(update={"tasks": None}), task_view.task
            raise TaskNotFoundError(f"taskset {taskset!r} has no task {slug!r}")
        matches = await self._catalog.tasks_by_slug(ref, project)
        if not matches:
            raise TaskNotFoundError(f"no task {ref!r}; name one as 'taskset:slug'")
        if len(matches) > 1:
            names = ", ".join(f"{view.name}:{ref}" for view, _ in matches)
            raise ConflictError(f"several tasksets have a task {ref!r}; name one of {names}")
        [(taskset_view, only)] = matches
        return taskset_view, only.task

    async def start_task_run(
        self, ref: str, options: dict[str, Any], project: str
    ) -> tuple[RunView, bool]:
        """Start a run of a taskset's task; `options` are the run request's other fields."""
        taskset, task = await self.find_task(ref, project)
        fields = {"model": SCRIPTED_MODEL, **options, "taskset": taskset.taskset_id}
        request = task_request(task, **fields)
        return await self.start_run(request, project, task=task.slug)

    async def _join_taskset(self, spec: RunSpec, taskset: str | None) -> RunSpec:
        """A run started with a taskset joins the taskset's job (its standing batch)."""
        if taskset is None:
            return spec
        try:
            found = await self._catalog.taskset(taskset, spec.project)
        except TasksetNotFoundError as error:
            raise InvalidRequestError(["body", "taskset"], str(error)) from error
        job_id = await self._catalog.ensure_job(found.taskset_id, spec.project)
        return spec.model_copy(update={"taskset_id": found.taskset_id, "batch_id": job_id})

    async def get_run(
        self, run_id: str, *, include_trajectory: bool = False, include_state: bool = False
    ) -> RunView:
        view = await self._store.get_run(run_id)
        view.temporal_ui_url = ui_link(
            self._temporal_ui_url, self._client.namespace, view.workflow_id
        )
        if include_trajectory:
            view.trajectory = await self._store.events(run_id)
        if include_state:
            view.state = await self._store.load_state(run_id)
        return view

    async def list_runs(
        self,
        *,
        project: str,
        environment: str | None,
        scenario: str | None,
        status: RunStatus | None,
        batch_id: str | None,
        limit: int,
        offset: int,
        task: tuple[str, str] | None = None,
    ) -> RunPage:
        """Runs, newest first; `task` is (taskset id, slug)."""
        total, views = await self._store.list_runs(
            project=project,
            environment=environment,
            scenario=scenario,
            status=status,
            batch_id=batch_id,
            task=task,
            limit=limit,
            offset=offset,
        )
        for view in views:
            view.temporal_ui_url = ui_link(
                self._temporal_ui_url, self._client.namespace, view.workflow_id
            )
        return RunPage(total=total, limit=limit, offset=offset, runs=views)

    async def events(
        self,
        run_id: str,
        *,
        after: int,
        limit: int,
        types: list[EventType] | None = None,
        exclude_types: list[EventType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[EventView]:
        await self._store.get_run(run_id)
        return await self._store.events(
            run_id,
            after=after,
            limit=limit,
            types=types,
            exclude_types=exclude_types,
            since=since,
            until=until,
        )

    # --- commands ------------------------------------------------------------------------------

    async def cancel_run(self, run_id: str, request: CancelRequest) -> RunView:
        view = await self._live_run(run_id)
        await self._call(self._handle(view).signal(RunWorkflow.cancel, request))
        return await self.get_run(run_id)

    async def close_run(self, run_id: str, request: CloseRequest) -> RunView:
        view = await self._live_run(run_id)
        await self._call(self._handle(view).signal(RunWorkflow.close, request))
        return await self.get_run(run_id)

    async def send_message(self, run_id: str, request: UserMessageRequest) -> MessageAck:
        view = await self._live_run(run_id)
        message = UserMessage(
            message_id=request.message_id or uuid.uuid4().hex, content=request.content
        )
        # The workflow dedupes by message id across continue-as-new and says so in its
        # answer; Temporal's own update-id dedupe would not (it ends with each run).
        return await self._call(
            self._handle(view).execute_update(RunWorkflow.user_message, message)
        )

    async def continue_run(self, run_id: str, request: ContinueRequest) -> RunView:
        """Hand in client tool results; returns once the run has recorded them."""
        view = await self._live_run(run_id)
        deadline = asyncio.get_running_loop().time() + CONTINUE_GRACE_SECONDS
        while True:
            # By name: the SDK types an async update method's result as a coroutine.
            update = self._handle(view).execute_update("continue", request, result_type=ContinueAck)
            try:
                await self._call(update)
                return await self.get_run(run_id)
            except ConflictError:
                # A worker that took the run over after a crash replays it before it waits
                # again; meanwhile the store already said awaiting_input. Give it the time.
                view = await self._store.get_run(run_id)
                late = asyncio.get_running_loop().time() > deadline
                if view.status is not RunStatus.awaiting_input or late:
                    raise
            await asyncio.sleep(CONTINUE_RETRY_SECONDS)

    async def relay_message(self, run_id: str, text: str, message_id: str | None) -> RelayAck:
        """Queue `text` for the run's project relay webhook (delivered by a workflow)."""
        view = await self._store.get_run(run_id)
        if view.project not in self._relay_webhooks:
            raise InvalidRequestError(
                ["body", "text"],
                f"project {view.project!r} has no relay webhook: add it to "
                "LOOPLINE_RELAY_WEBHOOKS (a JSON map of project to URL) on the API and workers",
            )
        message = RelayMessage(
            message_id=message_id or uuid.uuid4().hex,
            project=view.project,
            run_id=run_id,
            task=view.task,
            text=text,
        )
        workflow_id = f"relay-{run_id}-{message.message_id}"
        try:
            await self._client.start_workflow(
                RelayWorkflow.run,
                message,
                id=workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"relay a message of run {run_id}",
            )
        except RPCError as error:
            raise UnavailableError(f"Temporal did not accept the relay: {error.message}") from error
        return RelayAck(message_id=message.message_id, workflow_id=workflow_id)

    # --- what callers attach to a run ----------------------------------------------------------

    async def append_logs(self, run_id: str, entries: list[LogEntry]) -> AppendLogResult:
        written = await self._store.append(
            run_id,
            [
                (
                    f"log:{entry.entry_id or uuid.uuid4().hex}",
                    EventType.log,
                    entry.model_dump(mode="json", exclude_none=True),
                )
                for entry in entries
            ],
        )
        appended = sum(written)
        return AppendLogResult(appended=appended, duplicates=len(written) - appended)

    async def patch_run(self, run_id: str, patch: RunPatch) -> RunView:
        fields = patch.model_dump(mode="json", exclude_unset=True)
        status = fields.pop("status", None)
        if status is not None:
            await self._apply_status(run_id, RunStatus(status))
        if fields:
            await self._store.patch_run(run_id, fields, f"patch:{uuid.uuid4().hex}", fields)
        return await self.get_run(run_id)

    async def _apply_status(self, run_id: str, status: RunStatus) -> None:
        """The workflow owns a run's status; a caller may only ask it to end."""
        if status is RunStatus.cancelled:
            await self.cancel_run(run_id, CancelRequest(reason="status set to cancelled"))
            return
        view = await self._store.get_run(run_id)
        if status is RunStatus.completed and view.session:
            await self.close_run(run_id, CloseRequest(reason="status set to completed"))
            return
        raise InvalidRequestError(
            ["body", "status"],
            f"status {status.value!r} cannot be set: the run's workflow owns its status. "
            "Set 'cancelled' to cancel a run, or 'completed' to close a session.",
        )

    # --- helpers -------------------------------------------------------------------------------

    async def _start_workflow(self, run: RunInput, spec: RunSpec) -> None:
        try:
            await self._client.start_workflow(
                RunWorkflow.run,
                run,
                id=workflow_id_for(run.run_id),
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=initial_search_attributes(run),
                static_summary=f"{spec.environment}/{spec.scenario} · {spec.model}",
            )
        except WorkflowAlreadyStartedError:
            return  # the run already ran to its end: the idempotent start returns it
        except RPCError as error:
            raise UnavailableError(f"Temporal did not accept the run: {error.message}") from error

    async def _live_run(self, run_id: str) -> RunView:
        view = await self._store.get_run(run_id)
        if view.status.is_final:
            raise ConflictError(f"run {run_id!r} has already ended ({view.status.value})")
        return view

    def _handle(self, view: RunView) -> WorkflowHandle[Any, Any]:
        return self._client.get_workflow_handle(view.workflow_id)

    async def _call(self, call: Awaitable[T]) -> T:
        """Signal or update the run's workflow; its refusals become 409/422 answers."""
        try:
            return await call
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == WRONG_TOOL_CALLS:
                raise InvalidRequestError(["body", "tool_results"], cause.message) from error
            if isinstance(cause, ApplicationError) and cause.type in {NOT_AWAITING, NOT_ACCEPTING}:
                raise ConflictError(cause.message) from error
            raise
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise ConflictError(f"the run's workflow has ended: {error.message}") from error
            raise UnavailableError(
                f"could not reach the run's workflow: {error.message}"
            ) from error

    async def wait_for_turn(self, run_id: str, seconds: float) -> RunView:
        """The run once it has ended or waits for its caller (client tool results, or a
        session's next message), or as it is after `seconds`."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            view = await self.get_run(run_id)
            if view.status.is_final or view.status in WAITING_FOR_CALLER:
                return view
            if asyncio.get_running_loop().time() > deadline:
                return view
            await asyncio.sleep(TURN_POLL_SECONDS)

    async def _wait(self, run_id: str, seconds: int) -> None:
        handle = self._client.get_workflow_handle(workflow_id_for(run_id))
        try:
            await asyncio.wait_for(handle.result(), timeout=seconds)
        except (TimeoutError, WorkflowFailureError, RPCError):
            return  # the store holds the outcome, or says the run is still going


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
