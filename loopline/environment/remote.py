"""Remote environments: scenarios and tools served by an MCP server or an HTTP tool server.

The convention (README: remote environments) is named tools, hidden from the model:

* `setup` with `{"name": scenario, "arguments": args}` answers the prompt, as text or as an
  object `{"prompt", "session"?, "system_prompt"?, "user_persona"?}`;
* `evaluate` with `{"name", "arguments", "answer", "stop_reason"}` answers the reward, as a
  number or as an object `{"reward", "success"?, "details"?}`;
* `teardown` with `{"name"}` releases the session, when setup gave one.

Every call carries `_meta` (MCP) or body fields (HTTP) with the run id, an idempotency key
stable across retries and the session, so a server drops a retried duplicate and finds the
run's state. Named tools work the same over both protocols, carry arguments and `_meta` both
ways and report errors; MCP prompts take no `_meta` results and resources no arguments.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from loopline.environment import Reward, Setup
from loopline.environment.toolservers import (
    CallMeta,
    CallOutcome,
    ToolServer,
    ToolServerError,
    ToolServers,
)
from loopline.models import (
    EnvironmentInfo,
    RemoteCallPolicy,
    RemoteEnvironmentConfig,
    RemoteScenario,
    RemoteStatus,
    ScenarioInfo,
    ToolInfo,
)

SETUP_TOOL = "setup"
EVALUATE_TOOL = "evaluate"
TEARDOWN_TOOL = "teardown"
RESERVED_TOOLS = frozenset({SETUP_TOOL, EVALUATE_TOOL, TEARDOWN_TOOL})
# How long GET /v1/environments trusts a remote environment's last answer, and waits for one.
PROBE_TTL_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 3.0


class RemoteScenarioError(Exception):
    """The server broke the scenario convention, or its setup or evaluation failed."""


class RemoteState(BaseModel):
    """What Loopline keeps of a remote run's state: the server's handle of it."""

    session: str | None = None


class RemoteEnvironment:
    def __init__(self, config: RemoteEnvironmentConfig, servers: ToolServers) -> None:
        self.config = config
        self.name = config.name
        self._servers = servers
        self._scenarios = {scenario.name: scenario for scenario in config.scenarios}
        self._last_probe: tuple[float, EnvironmentInfo] | None = None

    @property
    def server(self) -> ToolServer:
        return self._servers.for_environment(self.config)

    @property
    def policy(self) -> RemoteCallPolicy:
        return RemoteCallPolicy(
            timeout_seconds=self.config.call_timeout_seconds, max_attempts=self.config.max_attempts
        )

    def scenario(self, name: str) -> RemoteScenario | None:
        """The declared scenario; None when none are declared (the server decides)."""
        if not self._scenarios:
            return None
        found = self._scenarios.get(name)
        if found is None:
            available = ", ".join(sorted(self._scenarios))
            raise LookupError(
                f"environment {self.name!r} has no scenario {name!r}; available: {available}"
            )
        return found

    async def tools(self) -> list[ToolInfo]:
        """The tools the model may be offered: the server's, less the scenario tools."""
        return [tool for tool in await self.server.list_tools() if tool.name not in RESERVED_TOOLS]

    async def setup(self, scenario: str, args: dict[str, Any], meta: CallMeta) -> Setup:
        outcome = await self._lifecycle_call(
            SETUP_TOOL, {"name": scenario, "arguments": args}, meta
        )
        answer = outcome.as_object()
        if answer is None:
            return Setup(prompt=outcome.text, state=RemoteState())
        prompt = answer.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise RemoteScenarioError(f"setup of {scenario!r} answered no prompt: {outcome.text}")
        session = answer.get("session")
        return Setup(
            prompt=prompt,
            state=RemoteState(session=None if session is None else str(session)),
            system_prompt=answer.get("system_prompt"),
            user_persona=answer.get("user_persona"),
        )

    async def evaluate(self, scenario: str, request: dict[str, Any], meta: CallMeta) -> Reward:
        outcome = await self._lifecycle_call(EVALUATE_TOOL, {"name": scenario, **request}, meta)
        answer = outcome.as_object()
        value = answer.get("reward") if answer is not None else _number(outcome.text)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RemoteScenarioError(
                f"evaluate of {scenario!r} answered no reward: {outcome.text[:300]}"
            )
        details = answer.get("details") if answer is not None else None
        success = answer.get("success") if answer is not None else None
        return Reward(
            value=float(value),
            details=details if isinstance(details, dict) else {},
            success=success if isinstance(success, bool) else None,
        )

    async def teardown(self, scenario: str, meta: CallMeta) -> None:
        if meta.session is None:
            return
        await self._lifecycle_call(TEARDOWN_TOOL, {"name": scenario}, meta)

    async def describe(self) -> EnvironmentInfo:
        """The environment with its tools, or why its server cannot be reached; the
        answer is kept for a few seconds so that listing environments stays fast."""
        now = time.monotonic()
        if self._last_probe is not None and now - self._last_probe[0] < PROBE_TTL_SECONDS:
            return self._last_probe[1]
        tools: list[ToolInfo] = []
        error: str | None = None
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                tools = await self.tools()
        except TimeoutError:
            error = f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"
        except ToolServerError as failure:
            error = str(failure)
        info = self._info(tools, error)
        self._last_probe = (now, info)
        return info

    def _info(self, tools: list[ToolInfo], error: str | None) -> EnvironmentInfo:
        return EnvironmentInfo(
            name=self.name,
            description=self.config.description,
            stateful=True,
            kind="remote",
            scenarios=[
                ScenarioInfo(
                    name=scenario.name,
                    description=scenario.description or scenario.name,
                    args_schema=scenario.args_schema,
                    style="functions",
                )
                for scenario in self.config.scenarios
            ],
            tools=tools,
            remote=RemoteStatus(
                transport=self.config.transport,
                target=self.config.target,
                reachable=error is None,
                error=error,
                checked_at=datetime.now(UTC),
            ),
        )

    async def _lifecycle_call(
        self, tool: str, arguments: dict[str, Any], meta: CallMeta
    ) -> CallOutcome:
        outcome = await self.server.call_tool(tool, arguments, meta)
        if outcome.is_error:
            raise RemoteScenarioError(f"{tool} failed on the server: {outcome.text[:1000]}")
        return outcome


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None
