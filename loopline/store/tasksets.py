"""Tasksets in the trace store.

An upload is one transaction: tasks whose slug exists are updated, the others are created,
and the taskset's version goes up once if anything changed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from loopline.models import (
    TaskDefinition,
    TasksetPage,
    TasksetUpload,
    TasksetUploadResult,
    TasksetView,
    TaskView,
)
from loopline.store.database import Database, aware, utcnow
from loopline.store.errors import TasksetNotFoundError
from loopline.store.tables import tasks, tasksets

# Slugs Loopline assigns are 4-digit numbers, which is why callers may not use those.
AUTO_SLUG_DIGITS = 4


def job_id_for(taskset_id: str) -> str:
    """The standing batch that runs started one by one with this taskset join."""
    return f"job-{taskset_id}"


class TasksetStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upload(self, upload: TasksetUpload, project: str) -> TasksetUploadResult:
        """Create the taskset if needed; update tasks whose slug exists, add the others."""
        return await self._db.write(_upload, upload, project)

    async def taskset(self, ref: str, project: str, *, with_tasks: bool = False) -> TasksetView:
        """A taskset of the project, by id or name."""

        def work(conn: Connection) -> TasksetView:
            row = _taskset_row(conn, ref, project)
            found = _tasks_of(conn, row["taskset_id"]) if with_tasks else None
            return _taskset_view(row, _task_count(conn, row["taskset_id"]), found)

        return await self._db.read(work)

    async def tasks(self, taskset_id: str) -> list[TaskView]:
        return await self._db.read(_tasks_of, taskset_id)

    async def tasks_by_slug(self, slug: str, project: str) -> list[tuple[TasksetView, TaskView]]:
        """The project's tasks with this slug, one per taskset that has it."""

        def work(conn: Connection) -> list[tuple[TasksetView, TaskView]]:
            rows = conn.execute(
                select(tasksets.c.taskset_id)
                .join(tasks, tasks.c.taskset_id == tasksets.c.taskset_id)
                .where(tasksets.c.project == project, tasks.c.slug == slug)
                .order_by(tasksets.c.name)
            ).all()
            found = []
            for row in rows:
                taskset_row = _taskset_row(conn, row.taskset_id, project)
                view = _taskset_view(taskset_row, _task_count(conn, row.taskset_id), None)
                [task] = [t for t in _tasks_of(conn, row.taskset_id) if t.slug == slug]
                found.append((view, task))
            return found

        return await self._db.read(work)

    async def list_tasksets(self, project: str, limit: int, offset: int) -> TasksetPage:
        query = select(tasksets).where(tasksets.c.project == project)

        def work(conn: Connection) -> TasksetPage:
            total = conn.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = conn.execute(query.order_by(tasksets.c.name).limit(limit).offset(offset))
            views = [
                _taskset_view(row._mapping, _task_count(conn, row.taskset_id), None) for row in rows
            ]
            return TasksetPage(total=total, limit=limit, offset=offset, tasksets=views)

        return await self._db.read(work)

    async def delete(self, ref: str, project: str) -> TasksetView:
        """Delete a taskset and its tasks; runs and batches that used it stay."""

        def work(conn: Connection) -> TasksetView:
            row = _taskset_row(conn, ref, project)
            view = _taskset_view(row, _task_count(conn, row["taskset_id"]), None)
            conn.execute(delete(tasks).where(tasks.c.taskset_id == row["taskset_id"]))
            conn.execute(delete(tasksets).where(tasksets.c.taskset_id == row["taskset_id"]))
            return view

        return await self._db.write(work)


def _upload(conn: Connection, upload: TasksetUpload, project: str) -> TasksetUploadResult:
    now = utcnow()
    row = conn.execute(
        select(tasksets)
        .where(tasksets.c.project == project, tasksets.c.name == upload.name)
        .with_for_update()
    ).first()
    if row is None:
        taskset_id, version = uuid.uuid4().hex, 0
        conn.execute(
            tasksets.insert().values(
                taskset_id=taskset_id,
                project=project,
                name=upload.name,
                description=upload.description,
                version=0,
                created_at=now,
                updated_at=now,
            )
        )
    else:
        taskset_id, version = row.taskset_id, row.version
    result = _upsert_tasks(conn, taskset_id, version + 1, upload.tasks, now)
    new_version = version + 1 if result.created or result.updated else version
    values: dict[str, Any] = {"version": new_version, "updated_at": now}
    if upload.description is not None:
        values["description"] = upload.description
    conn.execute(update(tasksets).where(tasksets.c.taskset_id == taskset_id).values(**values))
    return result.model_copy(
        update={"taskset_id": taskset_id, "name": upload.name, "version": new_version}
    )


def _upsert_tasks(
    conn: Connection,
    taskset_id: str,
    version: int,
    uploaded: list[TaskDefinition],
    now: datetime,
) -> TasksetUploadResult:
    existing = {
        row.slug: row for row in conn.execute(select(tasks).where(tasks.c.taskset_id == taskset_id))
    }
    position = max((row.position for row in existing.values()), default=-1)
    next_auto = 1 + max(
        (int(slug) for slug in existing if slug.isdigit() and len(slug) == AUTO_SLUG_DIGITS),
        default=0,
    )
    result = TasksetUploadResult(
        taskset_id=taskset_id, name="", version=version, created=[], updated=[], unchanged=[]
    )
    for task in uploaded:
        slug = task.slug
        if slug is None:
            slug, next_auto = f"{next_auto:0{AUTO_SLUG_DIGITS}d}", next_auto + 1
        # Kept without its slug (the key), which may be one the validator reserves for us.
        definition = task.model_dump(mode="json", exclude={"slug"})
        old = existing.get(slug)
        if old is None:
            position += 1
            conn.execute(
                tasks.insert().values(
                    taskset_id=taskset_id,
                    slug=slug,
                    position=position,
                    definition=definition,
                    version=version,
                    created_at=now,
                    updated_at=now,
                )
            )
            result.created.append(slug)
        elif old.definition == definition:
            result.unchanged.append(slug)
        else:
            conn.execute(
                update(tasks)
                .where(tasks.c.taskset_id == taskset_id, tasks.c.slug == slug)
                .values(definition=definition, version=version, updated_at=now)
            )
            result.updated.append(slug)
    return result


def _taskset_row(conn: Connection, ref: str, project: str) -> RowMapping:
    row = conn.execute(
        select(tasksets).where(
            tasksets.c.project == project,
            or_(tasksets.c.taskset_id == ref, tasksets.c.name == ref),
        )
    ).first()
    if row is None:
        raise TasksetNotFoundError(f"no taskset with id or name {ref!r}")
    return row._mapping


def _task_count(conn: Connection, taskset_id: str) -> int:
    query = select(func.count()).select_from(tasks).where(tasks.c.taskset_id == taskset_id)
    return int(conn.scalar(query) or 0)


def _tasks_of(conn: Connection, taskset_id: str) -> list[TaskView]:
    rows = conn.execute(
        select(tasks).where(tasks.c.taskset_id == taskset_id).order_by(tasks.c.position)
    )
    return [
        TaskView(
            slug=row.slug,
            task=TaskDefinition.model_validate(row.definition).model_copy(
                update={"slug": row.slug}
            ),
            version=row.version,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )
        for row in rows
    ]


def _taskset_view(row: RowMapping, count: int, found: list[TaskView] | None) -> TasksetView:
    return TasksetView(
        taskset_id=row["taskset_id"],
        name=row["name"],
        description=row["description"],
        version=row["version"],
        task_count=count,
        job_id=job_id_for(row["taskset_id"]),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        tasks=found,
    )
