"""Batches in the trace store. A batch is created with all its runs in one transaction, so
its run ids exist before its workflow starts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from loopline.models import BatchKind, BatchStatus, RunStatus, Usage
from loopline.store.database import Database, aware, utcnow
from loopline.store.errors import BatchNotFoundError
from loopline.store.rows import NewRun, insert_runs
from loopline.store.tables import USAGE_COLUMNS, artifacts, batches, runs


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
    incarnation: str = field(default_factory=lambda: uuid.uuid4().hex)


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
    project: str
    incarnation: str


@dataclass(frozen=True)
class RolloutOutcome:
    run_id: str
    task: str | None
    status: RunStatus
    reward: float | None
    success: bool | None
    stop_reason: str | None = None


@dataclass(frozen=True)
class BatchRuns:
    outcomes: list[RolloutOutcome]
    usage: Usage


@dataclass(frozen=True)
class BatchFilter:
    project: str
    status: BatchStatus | None = None
    kind: BatchKind | None = None
    taskset_id: str | None = None
    source: str | None = None


class BatchStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, batch: NewBatch, new_runs: list[NewRun]) -> str | None:
        """Insert a batch and its pending runs; if the id exists, return its identity hash."""
        return await self._db.call(self._create, batch, new_runs)

    def _create(self, batch: NewBatch, new_runs: list[NewRun]) -> str | None:
        try:
            with self._db.writer.begin() as conn:
                conn.execute(batches.insert().values(**_batch_row(batch)))
                insert_runs(conn, new_runs)
            return None
        except IntegrityError:
            query = select(batches.c.identity_hash).where(batches.c.batch_id == batch.batch_id)
            with self._db.reader.connect() as conn:
                existing = conn.scalar(query)
            if existing is None:
                raise
            return str(existing)

    async def ensure_job(self, job_id: str, taskset_id: str | None, project: str) -> None:
        """The standing batch that a taskset's one-off runs join (or a one-off run's own
        job, without a taskset); created on first use."""

        def work(conn: Connection) -> None:
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

        await self._db.write(work)

    async def get(self, batch_id: str) -> BatchRecord:
        def work(conn: Connection) -> BatchRecord:
            row = conn.execute(select(batches).where(batches.c.batch_id == batch_id)).first()
            if row is None:
                raise BatchNotFoundError(f"no batch {batch_id!r}")
            return _batch_record(row._mapping)

        return await self._db.read(work)

    async def list_batches(
        self, where: BatchFilter, *, limit: int, offset: int
    ) -> tuple[int, list[BatchRecord]]:
        conditions = [batches.c.project == where.project]
        for column, value in (
            (batches.c.source, where.source),
            (batches.c.status, where.status.value if where.status else None),
            (batches.c.kind, where.kind.value if where.kind else None),
            (batches.c.taskset_id, where.taskset_id),
        ):
            if value is not None:
                conditions.append(column == value)
        query = select(batches).where(*conditions)
        page = query.order_by(batches.c.created_at.desc(), batches.c.batch_id)

        def work(conn: Connection) -> tuple[int, list[BatchRecord]]:
            total = conn.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = conn.execute(page.limit(limit).offset(offset))
            return total, [_batch_record(row._mapping) for row in rows]

        return await self._db.read(work)

    async def stale_pending(self, older_than: datetime, limit: int) -> list[BatchRecord]:
        """Batches still pending since before `older_than`: their workflow may never have
        been started (the API stopped between the write and the start)."""
        query = (
            select(batches)
            .where(
                batches.c.kind == BatchKind.batch.value,
                batches.c.status == BatchStatus.pending.value,
                batches.c.created_at < older_than,
            )
            .order_by(batches.c.created_at)
            .limit(limit)
        )
        return await self._db.read(
            lambda conn: [_batch_record(row._mapping) for row in conn.execute(query)]
        )

    async def set_status(self, batch_id: str, status: BatchStatus) -> None:
        values: dict[str, Any] = {"status": status.value}
        if status.is_final:
            values["ended_at"] = utcnow()
        query = update(batches).where(batches.c.batch_id == batch_id).values(**values)
        await self._db.write(lambda conn: conn.execute(query))

    async def request_cancel(self, batch_id: str) -> None:
        query = (
            update(batches)
            .where(batches.c.batch_id == batch_id)
            .values(cancel_requested=True, status=BatchStatus.cancelling.value)
        )
        await self._db.write(lambda conn: conn.execute(query))

    async def cancel_unstarted(self, batch_id: str) -> int:
        """End the runs of a cancelled batch that never started; returns how many."""
        query = (
            update(runs)
            .where(runs.c.batch_id == batch_id, runs.c.status == RunStatus.pending.value)
            .values(status=RunStatus.cancelled.value, stop_reason="cancelled", ended_at=utcnow())
        )
        return await self._db.write(lambda conn: int(conn.execute(query).rowcount or 0))

    async def outcomes(self, batch_id: str) -> BatchRuns:
        """What every run of a batch came to, and what its model calls cost altogether."""
        outcome_query = (
            select(
                runs.c.run_id,
                runs.c.task,
                runs.c.status,
                runs.c.reward,
                runs.c.success,
                runs.c.stop_reason,
            )
            .where(runs.c.batch_id == batch_id)
            .order_by(runs.c.batch_index, runs.c.created_at)
        )
        usage_query = select(
            *(func.coalesce(func.sum(runs.c[name]), 0).label(name) for name in USAGE_COLUMNS)
        ).where(runs.c.batch_id == batch_id)

        def work(conn: Connection) -> BatchRuns:
            outcomes = [
                RolloutOutcome(
                    run_id=row.run_id,
                    task=row.task,
                    status=RunStatus(row.status),
                    reward=row.reward,
                    success=row.success,
                    stop_reason=row.stop_reason,
                )
                for row in conn.execute(outcome_query)
            ]
            totals = conn.execute(usage_query).one()._mapping
            return BatchRuns(outcomes=outcomes, usage=Usage.model_validate(dict(totals)))

        return await self._db.read(work)

    async def delete(self, batch_id: str) -> tuple[int, list[str]]:
        """Delete a batch and its runs with all their records; returns the number of runs
        and the storage paths of their artifacts (the caller removes the files)."""

        def work(conn: Connection) -> tuple[int, list[str]]:
            found = conn.scalar(select(batches.c.batch_id).where(batches.c.batch_id == batch_id))
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

        return await self._db.write(work)


def _batch_row(batch: NewBatch) -> dict[str, Any]:
    return {
        "batch_id": batch.batch_id,
        "project": batch.project,
        "kind": BatchKind.batch.value,
        "identity_hash": batch.identity_hash,
        "name": batch.name,
        "status": BatchStatus.pending.value,
        "taskset_id": batch.taskset_id,
        "model": batch.model,
        "rollout_count": batch.rollout_count,
        "max_parallel": batch.max_parallel,
        "total": batch.total,
        "cancel_requested": False,
        "metadata": batch.metadata,
        "source": batch.source,
        "incarnation": batch.incarnation,
        "created_at": utcnow(),
    }


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
        project=row["project"],
        incarnation=row["incarnation"] or "",
    )
