"""Runs with their conversations, a page at a time, for training exports.

A page is one read of the runs after a position in (created_at, run_id) order (keyset
paging: the same cost for the thousandth page as for the first) and one read of all their
messages, so that exporting any number of runs holds one page in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.engine import Connection

from loopline.models import EventType, RunSpec, RunStatus, StopReason, Usage
from loopline.models.lineage import OriginKind
from loopline.store.database import Database
from loopline.store.tables import USAGE_COLUMNS, events, runs
from loopline.store.trace import RunFilter, run_conditions
from workflows.contract.names import REMOTE_TOOLS_KEY

RUN_COLUMNS = (
    runs.c.run_id,
    runs.c.created_at,
    runs.c.status,
    runs.c.spec,
    runs.c.model,
    runs.c.steps,
    runs.c.stop_reason,
    runs.c.reward,
    runs.c.success,
    runs.c.evaluations,
    *(runs.c[name] for name in USAGE_COLUMNS),
)


@dataclass(frozen=True)
class ExportFilter:
    """Which runs an export holds: those of a run listing, and of one success value."""

    runs: RunFilter
    success: bool | None = None


@dataclass(frozen=True)
class Position:
    """Where a page ends: the next page starts after this run."""

    created_at: datetime
    run_id: str


@dataclass(frozen=True)
class ExportedRun:
    run_id: str
    created_at: datetime
    status: RunStatus
    spec: RunSpec
    model: str
    steps: int
    stop_reason: StopReason | None
    reward: float | None
    success: bool | None
    evaluations: list[dict[str, Any]] | None
    usage: Usage
    # The data of its message events in order: a Message with the model step's facts.
    messages: list[dict[str, Any]]
    # A remote environment's tools as listed at setup; None for in-process environments.
    listed_tools: list[dict[str, Any]] | None


@dataclass(frozen=True)
class ExportPage:
    runs: list[ExportedRun]
    # None on the last page.
    after: Position | None


class ExportStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, where: ExportFilter, after: Position | None, size: int) -> ExportPage:
        """Up to `size` runs that pass `where` after `after`, oldest first, each with its
        messages, in one read."""
        return await self.db.read(_page, where, after, size)


def _page(conn: Connection, where: ExportFilter, after: Position | None, size: int) -> ExportPage:
    rows = conn.execute(_runs_query(where, after).limit(size)).all()
    if not rows:
        return ExportPage(runs=[], after=None)
    messages, listed = _trajectories(conn, [row.run_id for row in rows])
    page = [_exported(row._mapping, messages, listed) for row in rows]
    last = rows[-1]
    # The row's own created_at (naive on SQLite) compares as it was written.
    end = Position(last.created_at, last.run_id) if len(rows) == size else None
    return ExportPage(runs=page, after=end)


def _runs_query(where: ExportFilter, after: Position | None) -> Select[Any]:
    conditions = run_conditions(where.runs)
    # A replay's turns are its parent's, played again: exported once, as the parent.
    origin = runs.c.spec[("origin", "kind")].as_string()
    conditions.append(or_(origin.is_(None), origin != OriginKind.replay.value))
    if where.success is not None:
        conditions.append(runs.c.success.is_(where.success))
    if after is not None:
        conditions.append(
            tuple_(runs.c.created_at, runs.c.run_id) > tuple_(after.created_at, after.run_id)
        )
    return select(*RUN_COLUMNS).where(*conditions).order_by(runs.c.created_at, runs.c.run_id)


def _trajectories(
    conn: Connection, run_ids: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The message events of these runs, and the tools a remote environment listed."""
    query = (
        select(events.c.run_id, events.c.key, events.c.type, events.c.data)
        .where(
            events.c.run_id.in_(run_ids),
            or_(events.c.type == EventType.message.value, events.c.key == REMOTE_TOOLS_KEY),
        )
        .order_by(events.c.run_id, events.c.seq)
    )
    messages: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
    listed: dict[str, list[dict[str, Any]]] = {}
    for run_id, key, type_, data in conn.execute(query):
        if type_ == EventType.message.value:
            messages[run_id].append(data)
        elif key == REMOTE_TOOLS_KEY:
            listed[run_id] = data["tools"]
    return messages, listed


def _exported(
    row: Any,
    messages: dict[str, list[dict[str, Any]]],
    listed: dict[str, list[dict[str, Any]]],
) -> ExportedRun:
    run_id = row["run_id"]
    created_at: datetime = row["created_at"]
    return ExportedRun(
        run_id=run_id,
        # SQLite hands datetimes back naive; they were written in UTC.
        created_at=created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC),
        status=RunStatus(row["status"]),
        spec=RunSpec.model_validate(row["spec"]),
        model=row["model"],
        steps=row["steps"],
        stop_reason=StopReason(row["stop_reason"]) if row["stop_reason"] else None,
        reward=row["reward"],
        success=row["success"],
        evaluations=row["evaluations"],
        usage=Usage.model_validate({name: row[name] for name in USAGE_COLUMNS}),
        messages=messages[run_id],
        listed_tools=listed.get(run_id),
    )
