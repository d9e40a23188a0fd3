"""The trace store: the read model of runs, their events and their environment state.

SQLite by default, PostgreSQL by URL (SQLAlchemy 2 async). Activities write events through
`record`, which is idempotent by (run_id, key): a retried activity finds what its first
attempt committed instead of writing it twice. Each event also gets the next sequence
number of its run, so readers page and resume by (run_id, seq).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from loopline.models import (
    EventType,
    EventView,
    Message,
    RunSpec,
    RunStatus,
    RunView,
    StopReason,
    Usage,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("identity_hash", String(64), nullable=False),
    Column("environment", String(200), nullable=False, index=True),
    Column("scenario", String(200), nullable=False, index=True),
    Column("model", String(200), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("steps", Integer, nullable=False, default=0),
    Column("stop_reason", String(20)),
    Column("reward", Float),
    Column("reward_details", JSON),
    Column("answer", Text),
    Column("error", Text),
    Column("usage", JSON, nullable=False),
    Column("torn_down", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("ended_at", DateTime(timezone=True)),
)

events = Table(
    "events",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("key", String(200), nullable=False),
    Column("type", String(20), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "key", name="uq_events_run_key"),
)

env_states = Table(
    "env_states",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("state", JSON),
)

_SEQ_CONFLICT_RETRIES = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class RunNotFoundError(LookupError):
    pass


class TraceStore:
    def __init__(self, url: str) -> None:
        self.url = url
        sqlite = make_url(url).get_backend_name() == "sqlite"
        if sqlite:
            _ensure_sqlite_folder(url)
        self._reader = create_async_engine(url)
        # SQLite writers take the write lock up front (BEGIN IMMEDIATE) so that two writers
        # never both read max(seq) and then collide; readers keep WAL snapshots.
        self._writer = create_async_engine(url) if sqlite else self._reader
        if sqlite:
            _configure_sqlite(self._reader, immediate=False)
            _configure_sqlite(self._writer, immediate=True)

    async def create_schema(self) -> None:
        async with self._writer.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self._reader.dispose()
        if self._writer is not self._reader:
            await self._writer.dispose()

    # --- runs ----------------------------------------------------------------------------------

    async def create_run(self, run_id: str, identity_hash: str, spec: RunSpec) -> str | None:
        """Insert a pending run; if the id exists, return the identity hash it was made with."""
        now = utcnow()
        row = {
            "run_id": run_id,
            "identity_hash": identity_hash,
            "environment": spec.environment,
            "scenario": spec.scenario,
            "model": spec.model,
            "spec": spec.model_dump(mode="json"),
            "status": RunStatus.pending.value,
            "steps": 0,
            "usage": Usage().model_dump(),
            "torn_down": False,
            "created_at": now,
        }
        try:
            async with self._writer.begin() as conn:
                await conn.execute(runs.insert().values(**row))
            return None
        except IntegrityError:
            async with self._reader.connect() as conn:
                existing = await conn.scalar(
                    select(runs.c.identity_hash).where(runs.c.run_id == run_id)
                )
            if existing is None:
                raise
            return str(existing)

    async def get_run(self, run_id: str) -> RunView:
        async with self._reader.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.run_id == run_id))).first()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return _run_view(row._mapping)

    async def run_spec(self, run_id: str) -> RunSpec:
        async with self._reader.connect() as conn:
            spec = await conn.scalar(select(runs.c.spec).where(runs.c.run_id == run_id))
        if spec is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return RunSpec.model_validate(spec)

    async def list_runs(
        self,
        *,
        environment: str | None,
        scenario: str | None,
        status: RunStatus | None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[RunView]]:
        conditions = []
        if environment:
            conditions.append(runs.c.environment == environment)
        if scenario:
            conditions.append(runs.c.scenario == scenario)
        if status:
            conditions.append(runs.c.status == status.value)
        query = select(runs).where(*conditions)
        async with self._reader.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(query.subquery()))
            rows = await conn.execute(
                query.order_by(runs.c.created_at.desc(), runs.c.run_id).limit(limit).offset(offset)
            )
            return int(total or 0), [_run_view(row._mapping) for row in rows]

    async def update_run(self, run_id: str, **fields: Any) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(update(runs).where(runs.c.run_id == run_id).values(**fields))

    # --- events --------------------------------------------------------------------------------

    async def record(
        self,
        run_id: str,
        key: str,
        type_: EventType,
        data: dict[str, Any],
        *,
        state: BaseModel | None = None,
        usage: Usage | None = None,
        run_fields: dict[str, Any] | None = None,
    ) -> tuple[EventView, bool]:
        """Append one event and, in the same transaction, the run's new state and fields.

        Returns the event and whether this call wrote it; a call whose key was already
        recorded changes nothing and returns the first event.
        """
        for _ in range(_SEQ_CONFLICT_RETRIES):
            try:
                async with self._writer.begin() as conn:
                    existing = await self._event_by_key(conn, run_id, key)
                    if existing is not None:
                        return existing, False
                    written = await self._append(conn, run_id, key, type_, data)
                    if state is not None:
                        await self._save_state(conn, run_id, state)
                    changes = dict(run_fields or {})
                    if usage is not None:
                        changes["usage"] = await self._added_usage(conn, run_id, usage)
                    if changes:
                        await conn.execute(
                            update(runs).where(runs.c.run_id == run_id).values(**changes)
                        )
                    return written, True
            except IntegrityError:
                continue  # a concurrent writer took this seq or this key: look again
        raise RuntimeError(f"could not append event {key!r} to run {run_id!r}")

    async def event_by_key(self, run_id: str, key: str) -> EventView | None:
        async with self._reader.connect() as conn:
            return await self._event_by_key(conn, run_id, key)

    async def events(
        self, run_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[EventView]:
        query = (
            select(events)
            .where(events.c.run_id == run_id, events.c.seq > after)
            .order_by(events.c.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._reader.connect() as conn:
            return [_event_view(row._mapping) for row in await conn.execute(query)]

    async def conversation(self, run_id: str) -> list[Message]:
        query = (
            select(events.c.data)
            .where(events.c.run_id == run_id, events.c.type == EventType.message.value)
            .order_by(events.c.seq)
        )
        async with self._reader.connect() as conn:
            return [Message.model_validate(data) for data in await conn.scalars(query)]

    # --- environment state ---------------------------------------------------------------------

    async def load_state(self, run_id: str) -> dict[str, Any] | None:
        async with self._reader.connect() as conn:
            state = await conn.scalar(
                select(env_states.c.state).where(env_states.c.run_id == run_id)
            )
        return dict(state) if state is not None else None

    # --- helpers -------------------------------------------------------------------------------

    async def _event_by_key(self, conn: AsyncConnection, run_id: str, key: str) -> EventView | None:
        row = (
            await conn.execute(select(events).where(events.c.run_id == run_id, events.c.key == key))
        ).first()
        return _event_view(row._mapping) if row is not None else None

    async def _append(
        self, conn: AsyncConnection, run_id: str, key: str, type_: EventType, data: dict[str, Any]
    ) -> EventView:
        last = await conn.scalar(select(func.max(events.c.seq)).where(events.c.run_id == run_id))
        row = {
            "run_id": run_id,
            "seq": int(last or 0) + 1,
            "key": key,
            "type": type_.value,
            "data": data,
            "created_at": utcnow(),
        }
        await conn.execute(events.insert().values(**row))
        return _event_view(row)

    async def _save_state(self, conn: AsyncConnection, run_id: str, state: BaseModel) -> None:
        dumped = state.model_dump(mode="json")
        changed = await conn.execute(
            update(env_states).where(env_states.c.run_id == run_id).values(state=dumped)
        )
        if changed.rowcount == 0:
            await conn.execute(env_states.insert().values(run_id=run_id, state=dumped))

    async def _added_usage(
        self, conn: AsyncConnection, run_id: str, usage: Usage
    ) -> dict[str, Any]:
        current = await conn.scalar(select(runs.c.usage).where(runs.c.run_id == run_id))
        return Usage.model_validate(current or {}).plus(usage).model_dump()


def _run_view(row: Any) -> RunView:
    spec = RunSpec.model_validate(row["spec"])
    return RunView(
        run_id=row["run_id"],
        workflow_id=workflow_id_for(row["run_id"]),
        status=RunStatus(row["status"]),
        environment=row["environment"],
        scenario=row["scenario"],
        model=row["model"],
        args=spec.args,
        max_steps=spec.max_steps,
        steps=row["steps"],
        stop_reason=StopReason(row["stop_reason"]) if row["stop_reason"] else None,
        reward=row["reward"],
        reward_details=row["reward_details"],
        answer=row["answer"],
        error=row["error"],
        usage=Usage.model_validate(row["usage"]),
        created_at=_aware(row["created_at"]),
        ended_at=_aware(row["ended_at"]),
        torn_down=row["torn_down"],
    )


def _event_view(row: Any) -> EventView:
    return EventView(
        seq=row["seq"],
        type=EventType(row["type"]),
        created_at=_aware(row["created_at"]),
        data=row["data"],
    )


def workflow_id_for(run_id: str) -> str:
    return f"run-{run_id}"


def _ensure_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[TraceStore]:
    store = TraceStore(url)
    try:
        await store.create_schema()
        yield store
    finally:
        await store.close()
