"""What every activity class holds: the trace store and the environments it serves."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, TypeVar

from temporalio import activity

from activities.errors import permanent
from loopline.environment import Environment
from loopline.environment.registry import Registry
from loopline.environment.remote import RemoteEnvironment, RemoteState
from loopline.environment.scenarios import Scenario
from loopline.environment.toolservers import CallMeta, ToolServer
from loopline.models import RunSpec, ToolInfo
from loopline.store import TraceStore
from workflows.contract.names import REMOTE_TOOLS_KEY, lifecycle_idempotency_key

SPEC_CACHE_SIZE = 4096
CachedT = TypeVar("CachedT")


class StoreActivities:
    def __init__(self, store: TraceStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._specs: OrderedDict[str, RunSpec] = OrderedDict()
        self._remote_tools: OrderedDict[str, list[ToolInfo]] = OrderedDict()

    async def spec(self, run_id: str) -> RunSpec:
        """The run's spec; it never changes once written, so each worker reads it once."""
        spec = self._specs.get(execution_key(run_id))
        if spec is None:
            spec = await self.store.run_spec(run_id)
            _remember(self._specs, execution_key(run_id), spec)
        return spec

    def environment(self, spec: RunSpec) -> Environment:
        try:
            return self.registry.environment(spec.environment)
        except LookupError as error:
            raise permanent(f"this worker cannot run it: {error}", "UnknownEnvironment") from error

    def scenario(self, spec: RunSpec) -> Scenario:
        try:
            return self.registry.scenario(spec.environment, spec.scenario)
        except LookupError as error:
            raise permanent(f"this worker cannot run it: {error}", "UnknownScenario") from error

    def remote(self, spec: RunSpec) -> RemoteEnvironment | None:
        """The run's environment when it is remote; None when it runs in this process."""
        try:
            return self.registry.remote(spec.environment)
        except LookupError as error:
            raise permanent(f"this worker cannot run it: {error}", "UnknownEnvironment") from error

    async def tool_server(self, spec: RunSpec) -> ToolServer | None:
        """Where the run's tools are called: its tool_server_url, its remote environment's
        server, or None for an in-process environment's own tools."""
        if spec.llm.tool_server_url is not None and spec.remote is not None:
            return await self.registry.servers.for_url(
                spec.llm.tool_server_url, spec.remote.timeout_seconds
            )
        remote = self.remote(spec)
        return remote.server if remote is not None else None

    async def remote_tools(self, run_id: str) -> list[ToolInfo]:
        """The remote tools offered to the run's model, as listed at setup."""
        tools = self._remote_tools.get(execution_key(run_id))
        if tools is None:
            event = await self.store.event_by_key(run_id, REMOTE_TOOLS_KEY)
            if event is None:
                raise permanent(f"run {run_id} has no tools listed at setup", "NoRemoteTools")
            tools = [ToolInfo.model_validate(tool) for tool in event.data["tools"]]
            _remember(self._remote_tools, execution_key(run_id), tools)
        return tools

    async def lifecycle_meta(self, run_id: str, event_key: str) -> CallMeta:
        """What a remote setup, evaluate or teardown call carries, with the session read from
        the run's state."""
        key = lifecycle_idempotency_key(run_id, event_key)
        return remote_call_meta(run_id, key, await self.store.load_state(run_id))


def remote_call_meta(run_id: str, idempotency_key: str, state: dict[str, Any] | None) -> CallMeta:
    """What a remote call carries: the run, its idempotency key and the session in `state`."""
    session = RemoteState.model_validate(state or {}).session
    return CallMeta(run_id=run_id, idempotency_key=idempotency_key, session=session)


def execution_key(run_id: str) -> str:
    """What the caches are keyed by: the id of a deleted run may be taken by a new run, with
    a spec of its own, in a new workflow execution."""
    if activity.in_activity():
        return f"{run_id}/{activity.info().workflow_run_id}"
    return run_id


def _remember(cache: OrderedDict[str, CachedT], key: str, value: CachedT) -> None:
    """Keep `value` for the run; the oldest run is forgotten beyond SPEC_CACHE_SIZE."""
    cache[key] = value
    if len(cache) > SPEC_CACHE_SIZE:
        cache.popitem(last=False)
