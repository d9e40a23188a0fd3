"""Runs of a project's tasks, as the task-runs API addresses them:
`/projects/{project_id}/tasks/{task_id}/runs/{run_id}`.

The path's project must be the caller's, and a run must belong to the task in its path;
anything else is answered as not found. What is done with a run once found is the run and
command services' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.services.access import Access, Caller, Need
from api.services.errors import NotFound
from api.services.runs import CallerFields, RunListing, RunService
from api.services.tasks import find_task
from loopline.models import RunPage, RunView
from loopline.store import TasksetStore


@dataclass(frozen=True)
class TaskPath:
    project_id: str
    task_id: str


class TaskRunService:
    def __init__(self, tasksets: TasksetStore, access: Access, runs: RunService) -> None:
        self._tasksets = tasksets
        self._access = access
        self._runs = runs

    def check_project(self, caller: Caller, path: TaskPath) -> None:
        if path.project_id != caller.project:
            raise NotFound(f"no project {path.project_id!r} for this credential")

    async def list(self, caller: Caller, path: TaskPath, *, limit: int, offset: int) -> RunPage:
        self.check_project(caller, path)
        listing = RunListing(task=path.task_id)
        return await self._runs.list_runs(caller, listing, limit=limit, offset=offset)

    async def create(
        self, caller: Caller, path: TaskPath, options: dict[str, Any], fields: CallerFields
    ) -> RunView:
        """Start a run of the task; `fields` (stage, branch, state) are written with it."""
        self.check_project(caller, path)
        view, _ = await self._runs.start_task_run(caller, path.task_id, options, fields)
        return view

    async def run(self, caller: Caller, path: TaskPath, run_id: str, need: Need) -> RunView:
        """The run at the path, if the caller may do `need` with it."""
        self.check_project(caller, path)
        view = await self._access.run(caller, run_id, need)
        taskset, task = await find_task(self._tasksets, caller.project, path.task_id)
        if view.taskset_id != taskset.taskset_id or view.task != task.slug:
            raise NotFound(f"task {path.task_id!r} has no run {run_id!r}")
        return view
