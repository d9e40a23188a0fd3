"""Scenario lifecycle: setup and teardown of one run (evaluation: activities/evaluation.py)."""

from __future__ import annotations

from temporalio import activity

from activities.base import StoreActivities
from activities.errors import permanent, remote_failure
from activities.heartbeats import heartbeating
from loopline.environment import Setup
from loopline.environment.remote import RESERVED_TOOLS, RemoteEnvironment, RemoteScenarioError
from loopline.environment.toolservers import CallMeta, ToolServer, ToolServerError
from loopline.models import EventType, Message, RunSpec, RunStatus
from loopline.store.database import utcnow
from loopline.store.rows import NewEvent
from workflows.contract import stubs
from workflows.contract.names import (
    PERSONA_KEY,
    REMOTE_TOOLS_KEY,
    SETUP_KEY,
    SYSTEM_PROMPT_KEY,
    TEARDOWN_KEY,
    lifecycle_idempotency_key,
)
from workflows.contract.payloads import RunInput, TeardownInput


class ScenarioActivities(StoreActivities):
    @activity.defn(name=stubs.SETUP.name)
    async def setup(self, run: RunInput) -> None:
        """Run the scenario's setup; record the prompt and the initial state together."""
        async with heartbeating():
            await self._setup(run)

    async def _setup(self, run: RunInput) -> None:
        if await self.store.event_by_key(run.run_id, SETUP_KEY) is not None:
            return
        spec = await self.spec(run.run_id)
        server = await self.tool_server(spec)
        if server is not None:
            await self._list_remote_tools(run.run_id, spec, server)
        remote = self.remote(spec)
        if remote is not None:
            setup = await self._remote_setup(run.run_id, spec, remote)
            default_system_prompt = remote.config.system_prompt
        else:
            setup = await self._local_setup(spec)
            default_system_prompt = self.environment(spec).system_prompt
        system_prompt = spec.llm.system_prompt or setup.system_prompt or default_system_prompt
        # One commit for the setup's events: batches' runs take turns at the store's writer.
        entries: list[NewEvent] = []
        if system_prompt:
            message = Message(role="system", content=system_prompt)
            entries.append(NewEvent(SYSTEM_PROMPT_KEY, EventType.message, message.model_dump()))
        if setup.user_persona:
            persona = {"persona": setup.user_persona}
            entries.append(NewEvent(PERSONA_KEY, EventType.log, persona))
        prompt = Message(role="user", content=spec.prompt or setup.prompt)
        entries.append(
            NewEvent(
                SETUP_KEY,
                EventType.message,
                prompt.model_dump(),
                state=setup.state,
                run_fields={"status": RunStatus.running.value},
            )
        )
        await self.store.record_all(run.run_id, entries)

    async def _local_setup(self, spec: RunSpec) -> Setup:
        scenario = self.scenario(spec)
        try:
            return await scenario.run_setup(spec.args)
        except Exception as error:
            raise permanent(
                f"setup of scenario {spec.scenario!r} failed: {type(error).__name__}: {error}",
                "ScenarioSetupFailed",
            ) from error

    async def _remote_setup(self, run_id: str, spec: RunSpec, remote: RemoteEnvironment) -> Setup:
        meta = CallMeta(run_id=run_id, idempotency_key=lifecycle_idempotency_key(run_id, SETUP_KEY))
        try:
            return await remote.setup(spec.scenario, spec.args, meta)
        except (ToolServerError, RemoteScenarioError) as error:
            raise remote_failure(f"setup of scenario {spec.scenario!r}", error) from error

    async def _list_remote_tools(self, run_id: str, spec: RunSpec, server: ToolServer) -> None:
        """List the server's tools once, keep those the run offers, and record them: every
        step of the run shows the model the same tools without asking the server again."""
        if await self.store.event_by_key(run_id, REMOTE_TOOLS_KEY) is not None:
            return
        try:
            listed = [tool for tool in await server.list_tools() if tool.name not in RESERVED_TOOLS]
        except ToolServerError as error:
            raise remote_failure("listing the tools", error) from error
        problem = _tool_list_problem(spec, {tool.name for tool in listed})
        if problem is not None:
            raise permanent(problem, "UnknownRemoteTools")
        offered = [tool for tool in listed if spec.offers(tool.name)]
        data = {"tools": [tool.model_dump() for tool in offered]}
        await self.store.record(run_id, REMOTE_TOOLS_KEY, EventType.log, data)

    @activity.defn(name=stubs.TEARDOWN.name)
    async def teardown(self, request: TeardownInput) -> None:
        """Release the environment, drop the run's keys and record the final status."""
        async with heartbeating():
            await self._teardown(request)

    async def _teardown(self, request: TeardownInput) -> None:
        spec = await self.spec(request.run_id)
        await self.store.drop_secrets(request.run_id)
        hook_error: str | None = None
        try:
            await self._release(request.run_id, spec)
        except Exception as error:
            # A teardown that fails must not hide how the run itself ended.
            activity.logger.exception("teardown of %s failed", spec.environment)
            hook_error = f"{type(error).__name__}: {error}"
        data = {
            "status": request.status.value,
            "stop_reason": request.stop_reason.value,
            "steps": request.steps,
            "error": request.error,
            "teardown_error": hook_error,
        }
        await self.store.record(
            request.run_id,
            TEARDOWN_KEY,
            EventType.status,
            data,
            run_fields={
                "status": request.status.value,
                "stop_reason": request.stop_reason.value,
                "error": request.error,
                "steps": request.steps,
                "torn_down": True,
                "ended_at": utcnow(),
            },
        )

    async def _release(self, run_id: str, spec: RunSpec) -> None:
        """The environment's teardown: its hook, or the remote server's `teardown` tool."""
        remote = self.registry.remote(spec.environment)
        if remote is not None:
            await remote.teardown(spec.scenario, await self.lifecycle_meta(run_id, TEARDOWN_KEY))
            return
        environment = self.registry.environment(spec.environment)
        state = environment.load_state(await self.store.load_state(run_id))
        await environment.run_teardown(state, run_id)


def _tool_list_problem(spec: RunSpec, listed: set[str]) -> str | None:
    """Tools the run names (include/exclude lists, client tools) that clash with the
    server's listing; the API checks in-process environments' tools before the run starts."""
    lists = {"include_tools": spec.include_tools or [], "exclude_tools": spec.exclude_tools}
    for field, names in lists.items():
        unknown = sorted(set(names) - listed)
        if unknown:
            return (
                f"{field} names {', '.join(unknown)}, which the tool server does not offer; "
                f"its tools: {', '.join(sorted(listed)) or 'none'}"
            )
    clashes = sorted({tool.name for tool in spec.client_tools} & listed)
    if clashes:
        return (
            f"client tool {', '.join(clashes)} has the name of a tool of the tool server; "
            "give the client-side tool another name"
        )
    return None
