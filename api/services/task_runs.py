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
from api.services.errors import Invalid, NotFound
from api.services.runs import CallerFields, RunListing, RunService
from api.services.tasks import find_task
from loopline.models import RunPage, RunView, Scope
from loopline.store import TasksetStore

# Loopline must know which model plays a task run; the seed's runs have it implicitly.
NO_MODEL = (
    "say which model runs the task: 'provider/model' (e.g. 'openai/gpt-4o'), a model "
    "config, or 'scripted' with a script; or give the task a model (agent_config.model), or "
    "the deployment one for every task run (LOOPLINE_DEFAULT_MODEL)"
)


@dataclass(frozen=True)
class TaskPath:
    project_id: str
    task_id: str


@dataclass
class TaskRunService:
    tasksets: TasksetStore
    access: Access
    runs: RunService
    # The model of a task run that names none, when its task names none either.
    default_model: str | None = None

    def check_project(self, caller: Caller, path: TaskPath) -> None:
        if path.project_id != caller.project:
            raise NotFound(f"no project {path.project_id!r} for this credential")

    async def list(self, caller: Caller, path: TaskPath, *, limit: int, offset: int) -> RunPage:
        self.check_project(caller, path)
        listing = RunListing(task=path.task_id)
        return await self.runs.list_runs(caller, listing, limit=limit, offset=offset)

    async def create(
        self, caller: Caller, path: TaskPath, options: dict[str, Any], fields: CallerFields
    ) -> RunView:
        """Start a run of the task; `fields` (stage, branch, state) are written with it."""
        self.check_project(caller, path)
        self.access.project(caller, Scope.task_write)
        if options.get("model") is None:
            _, task = await self.runs.find_task(caller, path.task_id)
            own = task.agent_config.model if task.agent_config else None
            model = own or self.default_model
            if model is None:
                raise Invalid(["body", "model"], NO_MODEL)
            options = {**options, "model": model}
        view, _ = await self.runs.start_task_run(caller, path.task_id, options, fields)
        return view

    async def run(self, caller: Caller, path: TaskPath, run_id: str, need: Need) -> RunView:
        """The run at the path, if the caller may do `need` with it."""
        self.check_project(caller, path)
        view = await self.access.run(caller, run_id, need)
        taskset, task = await find_task(self.tasksets, caller.project, path.task_id)
        if view.taskset_id != taskset.taskset_id or view.task != task.slug:
            raise NotFound(f"task {path.task_id!r} has no run {run_id!r}")
        return view
