"""Native API v1: tasksets, uploaded and upserted by task slug."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.access import ReadProject, WriteProject
from api.deps import Offset, Tasksets
from loopline.models import TasksetPage, TasksetUpload, TasksetUploadResult, TasksetView

router = APIRouter(prefix="/v1/tasksets", tags=["tasksets"])


@router.post("/upload")
async def upload_tasks(
    upload: TasksetUpload, tasksets: Tasksets, project: WriteProject
) -> TasksetUploadResult:
    """Create or update tasks in a taskset (created if it does not exist). A task whose
    slug exists in the taskset is updated, not duplicated."""
    return await tasksets.upload(upload, project)


@router.get("")
async def list_tasksets(
    tasksets: Tasksets,
    project: ReadProject,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> TasksetPage:
    return await tasksets.list(project, limit, offset)


@router.get("/{taskset}")
async def get_taskset(taskset: str, tasksets: Tasksets, project: ReadProject) -> TasksetView:
    """A taskset, by id or name, with its tasks."""
    return await tasksets.get(taskset, project)


@router.delete("/{taskset}")
async def delete_taskset(taskset: str, tasksets: Tasksets, project: WriteProject) -> TasksetView:
    """Delete a taskset and its tasks; the runs and batches that used them stay."""
    return await tasksets.delete(taskset, project)
