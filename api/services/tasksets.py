"""Tasksets: uploads checked against the environments, then upserted by slug."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from api.services.access import Access, Caller
from api.services.errors import Invalid
from api.services.tasks import check_task
from loopline.environment.registry import Registry
from loopline.models import (
    Scope,
    TaskDefinition,
    TasksetPage,
    TasksetUpload,
    TasksetUploadResult,
    TasksetView,
)
from loopline.store import TasksetStore


@dataclass
class TasksetService:
    store: TasksetStore
    access: Access
    registry: Registry

    async def upload(self, caller: Caller, upload: TasksetUpload) -> TasksetUploadResult:
        """Create the taskset if needed; update tasks whose slug exists, add the others.
        Every task is checked against its environment before anything is stored."""
        project = self.access.project(caller, Scope.task_write)
        await asyncio.to_thread(self._check, upload.tasks)
        return await self.store.upload(upload, project)

    async def get(self, caller: Caller, ref: str) -> TasksetView:
        project = self.access.project(caller, Scope.task_read)
        return await self.store.taskset(ref, project, with_tasks=True)

    async def list_tasksets(self, caller: Caller, limit: int, offset: int) -> TasksetPage:
        project = self.access.project(caller, Scope.task_read)
        return await self.store.list_tasksets(project, limit, offset)

    async def delete(self, caller: Caller, ref: str) -> TasksetView:
        project = self.access.project(caller, Scope.task_write)
        return await self.store.delete(ref, project)

    def _check(self, tasks: list[TaskDefinition]) -> None:
        seen: dict[str, int] = {}
        for index, task in enumerate(tasks):
            loc: list[str | int] = ["body", "tasks", index]
            if task.slug is not None and task.slug in seen:
                raise Invalid(
                    [*loc, "slug"],
                    f"slug {task.slug!r} is used by tasks {seen[task.slug]} and {index} "
                    "of this upload; each task needs its own",
                )
            if task.slug is not None:
                seen[task.slug] = index
            check_task(task, self.registry, loc)
