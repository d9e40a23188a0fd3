"""Tasksets: uploads checked against the environments, then upserted by slug."""

from __future__ import annotations

from api.errors import InvalidRequestError
from api.task_requests import check_task
from loopline.catalog import Catalog
from loopline.models import TasksetPage, TasksetUpload, TasksetUploadResult, TasksetView
from loopline.registry import Registry


class TasksetService:
    def __init__(self, catalog: Catalog, registry: Registry) -> None:
        self._catalog = catalog
        self._registry = registry

    async def upload(self, upload: TasksetUpload, project: str) -> TasksetUploadResult:
        """Create the taskset if needed; update tasks whose slug exists, add the others."""
        seen: dict[str, int] = {}
        for index, task in enumerate(upload.tasks):
            loc: list[str | int] = ["body", "tasks", index]
            if task.slug is not None and task.slug in seen:
                raise InvalidRequestError(
                    [*loc, "slug"],
                    f"slug {task.slug!r} is used by tasks {seen[task.slug]} and {index} "
                    "of this upload; each task needs its own",
                )
            if task.slug is not None:
                seen[task.slug] = index
            check_task(task, self._registry, loc)
        return await self._catalog.upload_tasks(upload, project)

    async def get(self, ref: str, project: str) -> TasksetView:
        return await self._catalog.taskset(ref, project, with_tasks=True)

    async def list(self, project: str, limit: int, offset: int) -> TasksetPage:
        return await self._catalog.list_tasksets(project, limit, offset)

    async def delete(self, ref: str, project: str) -> TasksetView:
        return await self._catalog.delete_taskset(ref, project)
