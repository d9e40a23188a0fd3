"""The one service layer behind every router: validation, starting runs, reading them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import ConflictError, UnavailableError
from api.run_requests import resolve
from loopline.models import (
    CancelRequest,
    EnvironmentInfo,
    EventView,
    Provider,
    RunInput,
    RunPage,
    RunRequest,
    RunSpec,
    RunStatus,
    RunView,
)
from loopline.registry import Registry
from loopline.secrets import SecretBox
from loopline.store import TraceStore, workflow_id_for
from loopline.temporal import initial_search_attributes
from workflows.run import RunWorkflow


class RunService:
    def __init__(
        self,
        store: TraceStore,
        client: Client,
        registry: Registry,
        secrets: SecretBox,
        task_queue: str,
        temporal_ui_url: str | None,
    ) -> None:
        self._store = store
        self._client = client
        self._registry = registry
        self._secrets = secrets
        self._task_queue = task_queue
        self._temporal_ui_url = temporal_ui_url

    # --- environments --------------------------------------------------------------------------

    def environments(self) -> list[EnvironmentInfo]:
        return [environment.info() for environment in self._registry.all()]

    def environment(self, name: str) -> EnvironmentInfo:
        return self._registry.environment(name).info()

    # --- runs ----------------------------------------------------------------------------------

    async def start_run(self, request: RunRequest) -> tuple[RunView, bool]:
        """Start a run, or return the one already started with this run id and body."""
        resolved = resolve(request, self._registry)
        spec = resolved.spec
        run_id = request.run_id or uuid.uuid4().hex
        identity = _identity_hash(request.identity())
        sealed = self._secrets.seal(resolved.secrets) if resolved.secrets else None
        existing_identity = await self._store.create_run(run_id, identity, spec, sealed)
        if existing_identity is not None and existing_identity != identity:
            raise ConflictError(
                f"run id {run_id!r} is already used by a run with a different request; "
                "choose another run_id or repeat the original request exactly"
            )
        await self._start_workflow(run_id, spec, request.max_duration_seconds)
        if request.sync:
            await self._wait(run_id, request.timeout)
        return await self.get_run(run_id), existing_identity is None

    async def get_run(
        self, run_id: str, *, include_trajectory: bool = False, include_state: bool = False
    ) -> RunView:
        view = await self._store.get_run(run_id)
        view.temporal_ui_url = self._ui_link(view.workflow_id)
        if include_trajectory:
            view.trajectory = await self._store.events(run_id)
        if include_state:
            view.state = await self._store.load_state(run_id)
        return view

    async def list_runs(
        self,
        *,
        environment: str | None,
        scenario: str | None,
        status: RunStatus | None,
        limit: int,
        offset: int,
    ) -> RunPage:
        total, views = await self._store.list_runs(
            environment=environment, scenario=scenario, status=status, limit=limit, offset=offset
        )
        for view in views:
            view.temporal_ui_url = self._ui_link(view.workflow_id)
        return RunPage(total=total, limit=limit, offset=offset, runs=views)

    async def events(self, run_id: str, *, after: int, limit: int) -> list[EventView]:
        await self._store.get_run(run_id)
        return await self._store.events(run_id, after=after, limit=limit)

    async def cancel_run(self, run_id: str, request: CancelRequest) -> RunView:
        view = await self._store.get_run(run_id)
        if view.status.is_final:
            raise ConflictError(f"run {run_id!r} has already ended ({view.status.value})")
        handle = self._client.get_workflow_handle(view.workflow_id)
        try:
            await handle.signal(RunWorkflow.cancel, request)
        except RPCError as error:
            raise UnavailableError(
                f"could not reach the run's workflow: {error.message}"
            ) from error
        return await self.get_run(run_id)

    # --- helpers -------------------------------------------------------------------------------

    async def _start_workflow(
        self, run_id: str, spec: RunSpec, max_duration_seconds: int | None
    ) -> None:
        user_llm = spec.user_llm
        run = RunInput(
            run_id=run_id,
            environment=spec.environment,
            scenario=spec.scenario,
            model=spec.model,
            max_steps=spec.max_steps,
            max_duration_seconds=max_duration_seconds,
            model_is_local=spec.llm.provider is Provider.scripted,
            user_model=user_llm.label if user_llm else None,
            user_model_is_local=user_llm is None or user_llm.provider is Provider.scripted,
            max_user_turns=spec.max_user_turns,
        )
        try:
            await self._client.start_workflow(
                RunWorkflow.run,
                run,
                id=workflow_id_for(run_id),
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

    async def _wait(self, run_id: str, seconds: int) -> None:
        handle = self._client.get_workflow_handle(workflow_id_for(run_id))
        try:
            await asyncio.wait_for(handle.result(), timeout=seconds)
        except (TimeoutError, WorkflowFailureError, RPCError):
            return  # the store holds the outcome, or says the run is still going

    def _ui_link(self, workflow_id: str) -> str | None:
        if not self._temporal_ui_url:
            return None
        namespace = self._client.namespace
        return f"{self._temporal_ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"


def _identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
