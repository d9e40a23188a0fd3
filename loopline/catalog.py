"""Tasksets and batches in the trace store.

A taskset upload is one transaction: tasks whose slug exists are updated, the others are
created, and the taskset's version goes up once if anything changed. A batch is created
with all its runs in one transaction, so its run ids exist before its workflow starts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from loopline.database import Database, aware, utcnow
from loopline.models import (
    BatchKind,
    BatchStatus,
    RunStatus,
    TaskDefinition,
    TasksetPage,
    TasksetUpload,
    TasksetUploadResult,
    TasksetView,
    TaskView,
    Usage,
)
from loopline.store import NewRun, insert_runs
from loopline.tables import USAGE_COLUMNS, artifacts, batches, runs, tasks, tasksets


class TasksetNotFoundError(LookupError):
    pass


class BatchNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class NewBatch:
    batch_id: str
    identity_hash: str
    name: str | None
    taskset_id: str | None
    model: str
    rollout_count: int
    max_parallel: int
    total: int
    metadata: dict[str, Any]
    project: str
    source: str


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    kind: BatchKind
    identity_hash: str | None
    name: str | None
    status: BatchStatus
    taskset_id: str | None
    model: str | None
    rollout_count: int
    max_parallel: int | None
    total: int
    cancel_requested: bool
    metadata: dict[str, Any]
    created_at: datetime
    ended_at: datetime | None
    source: str


@dataclass(frozen=True)
class RolloutOutcome:
    run_id: str
    task: str | None
    status: RunStatus
    reward: float | None
    success: bool | None


@dataclass(frozen=True)
class BatchRuns:
    outcomes: list[RolloutOutcome]
    usage: Usage


def job_id_for(taskset_id: str) -> str:
    return f"job-{taskset_id}"


class Catalog:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- tasksets ------------------------------------------------------------------------------

    async def upload_tasks(self, upload: TasksetUpload, project: str) -> TasksetUploadResult:
        return await self._db.call(self._upload_tasks, upload, project)

    def _upload_tasks(self, upload: TasksetUpload, project: str) -> TasksetUploadResult:
        now = utcnow()
        with self._db.writer.begin() as conn:
            row = conn.execute(
                select(tasksets)
                .where(tasksets.c.project == project, tasksets.c.name == upload.name)
                .with_for_update()
            ).first()
            if row is None:
                taskset_id = uuid.uuid4().hex
                version = 0
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
            changed = bool(result.created or result.updated)
            new_version = version + 1 if changed else version
            values: dict[str, Any] = {"version": new_version, "updated_at": now}
            if upload.description is not None:
                values["description"] = upload.description
            conn.execute(
                update(tasksets).where(tasksets.c.taskset_id == taskset_id).values(**values)
            )
        return result.model_copy(
            update={"taskset_id": taskset_id, "name": upload.name, "version": new_version}
        )

    async def taskset(self, ref: str, project: str, *, with_tasks: bool = False) -> TasksetView:
        """A taskset of the project, by id or name."""

        def work() -> TasksetView:
            with self._db.reader.connect() as conn:
                row = _taskset_row(conn, ref, project)
                count = _task_count(conn, row["taskset_id"])
                found = _tasks_of(conn, row["taskset_id"]) if with_tasks else None
            return _taskset_view(row, count, found)

        return await self._db.call(work)

    async def tasks(self, taskset_id: str) -> list[TaskView]:
        def work() -> list[TaskView]:
            with self._db.reader.connect() as conn:
                return _tasks_of(conn, taskset_id)

        return await self._db.call(work)

    async def tasks_by_slug(self, slug: str, project: str) -> list[tuple[TasksetView, TaskView]]:
        """The project's tasks with this slug, one per taskset that has it."""

        def work() -> list[tuple[TasksetView, TaskView]]:
            with self._db.reader.connect() as conn:
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

        return await self._db.call(work)

    async def list_tasksets(self, project: str, limit: int, offset: int) -> TasksetPage:
        query = select(tasksets).where(tasksets.c.project == project)

        def work() -> TasksetPage:
            with self._db.reader.connect() as conn:
                total = conn.scalar(select(func.count()).select_from(query.subquery())) or 0
                rows = conn.execute(
                    query.order_by(tasksets.c.name).limit(limit).offset(offset)
                ).all()
                views = [
                    _taskset_view(row._mapping, _task_count(conn, row.taskset_id), None)
                    for row in rows
                ]
            return TasksetPage(total=total, limit=limit, offset=offset, tasksets=views)

        return await self._db.call(work)

    async def delete_taskset(self, ref: str, project: str) -> TasksetView:
        """Delete a taskset and its tasks; runs and batches that used it stay."""

        def work() -> TasksetView:
            with self._db.writer.begin() as conn:
                row = _taskset_row(conn, ref, project)
                view = _taskset_view(row, _task_count(conn, row["taskset_id"]), None)
                conn.execute(delete(tasks).where(tasks.c.taskset_id == row["taskset_id"]))
                conn.execute(delete(tasksets).where(tasksets.c.taskset_id == row["taskset_id"]))
            return view

        return await self._db.call(work)

    # --- batches -------------------------------------------------------------------------------

    async def create_batch(self, batch: NewBatch, new_runs: list[NewRun]) -> str | None:
        """Insert a batch and its pending runs; if the id exists, return its identity hash."""

        def work() -> str | None:
            try:
                with self._db.writer.begin() as conn:
                    conn.execute(
                        batches.insert().values(
                            batch_id=batch.batch_id,
                            project=batch.project,
                            kind=BatchKind.batch.value,
                            identity_hash=batch.identity_hash,
                            name=batch.name,
                            status=BatchStatus.pending.value,
                            taskset_id=batch.taskset_id,
                            model=batch.model,
                            rollout_count=batch.rollout_count,
                            max_parallel=batch.max_parallel,
                            total=batch.total,
                            cancel_requested=False,
                            metadata=batch.metadata,
                            source=batch.source,
                            created_at=utcnow(),
                        )
                    )
                    insert_runs(conn, new_runs)
                return None
            except IntegrityError:
                with self._db.reader.connect() as conn:
                    existing = conn.scalar(
                        select(batches.c.identity_hash).where(batches.c.batch_id == batch.batch_id)
                    )
                if existing is None:
                    raise
                return str(existing)

        return await self._db.call(work)

    async def ensure_job(self, taskset_id: str, project: str) -> str:
        """The standing batch that a taskset's one-off runs join; created on first use."""
        job_id = job_id_for(taskset_id)

        def work() -> str:
            with self._db.writer.begin() as conn:
                exists = conn.scalar(select(batches.c.batch_id).where(batches.c.batch_id == job_id))
                if exists is None:
                    conn.execute(
                        batches.insert().values(
                            batch_id=job_id,
                            project=project,
                            kind=BatchKind.job.value,
                            status=BatchStatus.open.value,
                            taskset_id=taskset_id,
                            rollout_count=1,
                            total=0,
                            cancel_requested=False,
                            metadata={},
                            created_at=utcnow(),
                        )
                    )
            return job_id

        return await self._db.call(work)

    async def batch(self, batch_id: str) -> BatchRecord:
        def work() -> BatchRecord:
            with self._db.reader.connect() as conn:
                row = conn.execute(select(batches).where(batches.c.batch_id == batch_id)).first()
            if row is None:
                raise BatchNotFoundError(f"no batch {batch_id!r}")
            return _batch_record(row._mapping)

        return await self._db.call(work)

    async def batch_project(self, batch_id: str) -> str:
        def work() -> str:
            with self._db.reader.connect() as conn:
                query = select(batches.c.project).where(batches.c.batch_id == batch_id)
                project = conn.scalar(query)
            if project is None:
                raise BatchNotFoundError(f"no batch {batch_id!r}")
            return str(project)

        return await self._db.call(work)

    async def list_batches(
        self,
        *,
        project: str,
        status: BatchStatus | None,
        kind: BatchKind | None,
        taskset_id: str | None,
        source: str | None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[BatchRecord]]:
        conditions = [batches.c.project == project]
        if source is not None:
            conditions.append(batches.c.source == source)
        if status is not None:
            conditions.append(batches.c.status == status.value)
        if kind is not None:
            conditions.append(batches.c.kind == kind.value)
        if taskset_id is not None:
            conditions.append(batches.c.taskset_id == taskset_id)
        query = select(batches).where(*conditions)
        page = query.order_by(batches.c.created_at.desc(), batches.c.batch_id)

        def work() -> tuple[int, list[BatchRecord]]:
            with self._db.reader.connect() as conn:
                total = conn.scalar(select(func.count()).select_from(query.subquery())) or 0
                rows = conn.execute(page.limit(limit).offset(offset))
                return total, [_batch_record(row._mapping) for row in rows]

        return await self._db.call(work)

    async def set_batch_status(self, batch_id: str, status: BatchStatus) -> None:
        values: dict[str, Any] = {"status": status.value}
        if status.is_final:
            values["ended_at"] = utcnow()

        def work() -> None:
            with self._db.writer.begin() as conn:
                conn.execute(update(batches).where(batches.c.batch_id == batch_id).values(**values))

        await self._db.call(work)

    async def request_cancel(self, batch_id: str) -> None:
        def work() -> None:
            with self._db.writer.begin() as conn:
                conn.execute(
                    update(batches)
                    .where(batches.c.batch_id == batch_id)
                    .values(cancel_requested=True, status=BatchStatus.cancelling.value)
                )

        await self._db.call(work)

    async def cancel_unstarted(self, batch_id: str) -> int:
        """End the runs of a cancelled batch that never started; returns how many."""

        def work() -> int:
            with self._db.writer.begin() as conn:
                changed = conn.execute(
                    update(runs)
                    .where(runs.c.batch_id == batch_id, runs.c.status == RunStatus.pending.value)
                    .values(status=RunStatus.cancelled.value, stop_reason="cancelled")
                    .values(ended_at=utcnow())
                )
                return int(changed.rowcount or 0)

        return await self._db.call(work)

    async def batch_runs(self, batch_id: str) -> BatchRuns:
        """What every run of a batch came to, and what its model calls cost altogether."""
        outcome_query = (
            select(runs.c.run_id, runs.c.task, runs.c.status, runs.c.reward, runs.c.success)
            .where(runs.c.batch_id == batch_id)
            .order_by(runs.c.batch_index, runs.c.created_at)
        )
        usage_query = select(
            *(func.coalesce(func.sum(runs.c[name]), 0).label(name) for name in USAGE_COLUMNS)
        ).where(runs.c.batch_id == batch_id)

        def work() -> BatchRuns:
            with self._db.reader.connect() as conn:
                outcomes = [
                    RolloutOutcome(
                        run_id=row.run_id,
                        task=row.task,
                        status=RunStatus(row.status),
                        reward=row.reward,
                        success=row.success,
                    )
                    for row in conn.execute(outcome_query)
                ]
                totals = conn.execute(usage_query).one()._mapping
            return BatchRuns(outcomes=outcomes, usage=Usage.model_validate(dict(totals)))

        return await self._db.call(work)

    async def delete_batch(self, batch_id: str) -> tuple[int, list[str]]:
        """Delete a batch and its runs with all their records; returns the number of runs
        and the storage paths of their artifacts (the caller removes the files)."""

        def work() -> tuple[int, list[str]]:
            with self._db.writer.begin() as conn:
                found = conn.scalar(
                    select(batches.c.batch_id).where(batches.c.batch_id == batch_id)
                )
                if found is None:
                    raise BatchNotFoundError(f"no batch {batch_id!r}")
                run_ids = select(runs.c.run_id).where(runs.c.batch_id == batch_id)
                paths = list(
                    conn.scalars(
                        select(artifacts.c.storage_path).where(artifacts.c.run_id.in_(run_ids))
                    )
                )
                deleted = conn.execute(delete(runs).where(runs.c.batch_id == batch_id))
                conn.execute(delete(batches).where(batches.c.batch_id == batch_id))
                return int(deleted.rowcount or 0), paths

        return await self._db.call(work)


# Slugs Loopline assigns are 4-digit numbers, which is why callers may not use those.
AUTO_SLUG_DIGITS = 4


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


def _batch_record(row: RowMapping) -> BatchRecord:
    return BatchRecord(
        batch_id=row["batch_id"],
        kind=BatchKind(row["kind"]),
        identity_hash=row["identity_hash"],
        name=row["name"],
        status=BatchStatus(row["status"]),
        taskset_id=row["taskset_id"],
        model=row["model"],
        rollout_count=row["rollout_count"],
        max_parallel=row["max_parallel"],
        total=row["total"],
        cancel_requested=row["cancel_requested"],
        metadata=row["metadata"],
        created_at=aware(row["created_at"]),  # type: ignore[arg-type]
        ended_at=aware(row["ended_at"]),
        source=row["source"],
    )
