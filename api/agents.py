"""Agents: configs kept as versions named by their content, deployed to named environments,
and called as runs that return once they end or wait for their caller's tool results."""

from __future__ import annotations

from typing import Any

from api.service import RunService
from loopline.agents import AgentCatalog, AgentNotFoundError, AgentVersion, agent_id_for
from loopline.models import ContinueRequest, EventView, RunRequest, RunView
from loopline.store import TraceStore

# How long a call waits for its run to end or to need the caller, before answering with the
# run as it is (the caller reads it back, or continues it, by its id).
CALL_WAIT_SECONDS = 300.0


class AgentService:
    def __init__(self, catalog: AgentCatalog, runs: RunService, store: TraceStore) -> None:
        self._catalog = catalog
        self._runs = runs
        self._store = store

    async def save_version(self, project: str, path: str, config: dict[str, Any]) -> AgentVersion:
        return await self._catalog.save(project, path, config)

    async def find_version(
        self,
        project: str,
        *,
        version_id: str | None = None,
        agent_id: str | None = None,
        path: str | None = None,
        environment: str | None = None,
    ) -> AgentVersion:
        """A version by id, or the one an agent (by id or path) has in `environment`."""
        if version_id:
            return await self._catalog.version(version_id, project)
        agent = agent_id or agent_id_for(project, path or "")
        return await self._catalog.current(agent, project, environment)

    async def deploy(
        self, project: str, agent_id: str, environment: str, version_id: str
    ) -> AgentVersion:
        version = await self._catalog.version(version_id, project)
        if version.agent_id != agent_id:
            raise AgentNotFoundError(f"agent {agent_id!r} has no version {version_id!r}")
        await self._catalog.deploy(version, environment)
        return version

    async def start(self, request: RunRequest, project: str) -> RunView:
        view, _ = await self._runs.start_run(request, project)
        return view

    async def resume(self, run_id: str, results: ContinueRequest) -> RunView:
        return await self._runs.continue_run(run_id, results)

    async def turn(self, run_id: str, *, save: bool) -> RunView:
        """The run with its trajectory once it has ended or needs its caller. A run not to
        be saved forgets its payloads once it has ended; the answer still holds them."""
        view = await self._runs.wait_for_turn(run_id, CALL_WAIT_SECONDS)
        full = await self._runs.get_run(run_id, include_trajectory=True)
        if not save and view.status.is_final:
            await self._store.forget_payloads(run_id)
        return full

    async def events_after(self, run_id: str, seq: int) -> list[EventView]:
        return await self._runs.events(run_id, after=seq, limit=1000)

    async def run(self, run_id: str) -> RunView:
        return await self._runs.get_run(run_id)
