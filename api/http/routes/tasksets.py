"""Native API v1: tasksets, uploaded and upserted by task slug."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.http.deps import Offset, Svc, Who
from api.http.routing import DocumentedRoute
from loopline.models import TasksetPage, TasksetUpload, TasksetUploadResult, TasksetView

router = APIRouter(prefix="/v1/tasksets", tags=["tasksets"], route_class=DocumentedRoute)


@router.post("/upload")
async def upload_tasks(upload: TasksetUpload, svc: Svc, who: Who) -> TasksetUploadResult:
    """Create or update tasks in a taskset (created if it does not exist). A task whose
    slug exists in the taskset is updated, not duplicated."""
    return await svc.tasksets.upload(who, upload)


@router.get("")
async def list_tasksets(
    svc: Svc,
    who: Who,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> TasksetPage:
    return await svc.tasksets.list_tasksets(who, limit, offset)


@router.get("/{taskset}")
async def get_taskset(taskset: str, svc: Svc, who: Who) -> TasksetView:
    """A taskset, by id or name, with its tasks."""
    return await svc.tasksets.get(who, taskset)


@router.delete("/{taskset}")
async def delete_taskset(taskset: str, svc: Svc, who: Who) -> TasksetView:
    """Delete a taskset and its tasks; the runs and batches that used them stay."""
    return await svc.tasksets.delete(who, taskset)
