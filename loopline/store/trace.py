"""The trace store: the read model of runs, their events and their environment state.

Activities write events through `record`, which is idempotent by (run_id, key): a retried
activity finds what its first attempt committed instead of writing it twice. Each event also
gets the next sequence number of its run, so readers page and resume by (run_id, seq).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, String, cast, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from loopline.models import (
    ArtifactInfo,
    BatchKind,
    CallbackOutcome,
    EventFilter,
    EventType,
    EventView,
    Message,
    RunSpec,
    RunStatus,
    RunView,
    StopReason,
    Usage,
)
from loopline.redaction import HeldSecrets
from loopline.store.database import Database, aware, utcnow
from loopline.store.errors import RunNotFoundError
from loopline.store.notices import notify
from loopline.store.rows import (
    NewEvent,
    NewRun,
    StateWrite,
    append_event,
    event_by_key,
    event_view,
    insert_runs,
    lock_run,
    read_state_text,
    record_entries,
    run_view,
)
from loopline.store.tables import (
    artifacts,
    batches,
    callback_secrets,
    env_states,
    events,
    run_secrets,
    runs,
)
from workflows.contract.payloads import RunInput


@dataclass(frozen=True)
class Snapshot:
    events: dict[str, EventView]
    # 0 while the run has no state; each write of it adds one.
    state_version: int


@dataclass(frozen=True)
class PendingRun:
    run_id: str
    incarnation: str
    run_input: RunInput | None
    spec: RunSpec


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing shows; `task` is (taskset id, slug)."""

    project: str | None = None
    environment: str | None = None
    scenario: str | None = None
    status: RunStatus | None = None
    batch_id: str | None = None
    task: tuple[str, str] | None = None
    model: str | None = None
    taskset_id: str | None = None
    tag: str | None = None
    min_reward: float | None = None
    max_reward: float | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    run_id_prefix: str | None = None


@dataclass(frozen=True)
class Progress:
    """Where a run is, read in one statement: its status and its last event's seq."""

    status: RunStatus
    last_seq: int


WriteListener = Callable[[str], None]


class TraceStore:
    """Async facade over SQLAlchemy Core; each call is one unit of work in a store thread.

    Every write of a run's events is announced: to listeners in this process once it is
    committed, and on PostgreSQL to every process with NOTIFY (loopline/store/notices.py).
    """

    def __init__(self, db: Database, held: HeldSecrets | None = None) -> None:
        self.db = db
        self._listeners: list[WriteListener] = []
        # What a run's events and fields must not contain (see loopline/redaction.py).
        self._held = held

    def scrub(self, run_id: str, value: Any) -> Any:
        """`value` with the run's sealed secrets taken out, as every write keeps it."""
        return self._held.scrub_value(value, run_id) if self._held else value

    def on_write(self, listener: WriteListener) -> None:
        """Call `listener(run_id)` after each committed write of a run's events."""
        self._listeners.append(listener)

    def _written(self, run_id: str) -> None:
        for listener in self._listeners:
            listener(run_id)

    async def progress(self, run_ids: list[str]) -> dict[str, Progress]:
        """Status and last seq of each run that exists, in one statement (one snapshot)."""
        last = (
            select(func.max(events.c.seq)).where(events.c.run_id == runs.c.run_id).scalar_subquery()
        )
        query = select(runs.c.run_id, runs.c.status, last).where(runs.c.run_id.in_(run_ids))
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return {row[0]: Progress(RunStatus(row[1]), int(row[2] or 0)) for row in rows}

    # --- runs ----------------------------------------------------------------------------------

    async def create_run(self, new: NewRun) -> str | None:
        """Insert a pending run; if the id exists, return the identity hash it was made with."""
        return await self.db.call(self._create_run, new)

    def _create_run(self, new: NewRun) -> str | None:
        try:
            with self.db.writer.begin() as conn:
                insert_runs(conn, [new])
            return None
        except IntegrityError:
            with self.db.reader.connect() as conn:
                existing = conn.scalar(
                    select(runs.c.identity_hash).where(runs.c.run_id == new.run_id)
                )
            if existing is None:
                raise
            return str(existing)

    async def delete_run(self, run_id: str) -> None:
        """Remove a run whose start Temporal refused, with everything it holds."""
        query = runs.delete().where(runs.c.run_id == run_id)
        await self.db.write(lambda conn: conn.execute(query))

    async def stale_pending(self, older_than: datetime, limit: int) -> list[PendingRun]:
        """Runs still pending since before `older_than` that nobody else starts: not of a
        batch, or of a taskset's job (a batch's workflow starts its own runs)."""
        jobs = select(batches.c.batch_id).where(batches.c.kind == BatchKind.job.value)
        query = (
            select(runs.c.run_id, runs.c.incarnation, runs.c.run_input, runs.c.spec)
            .where(
                runs.c.status == RunStatus.pending.value,
                runs.c.created_at < older_than,
                or_(runs.c.batch_id.is_(None), runs.c.batch_id.in_(jobs)),
            )
            .order_by(runs.c.created_at)
            .limit(limit)
        )
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [
            PendingRun(
                run_id=row.run_id,
                incarnation=row.incarnation or "",
                run_input=RunInput.model_validate(row.run_input) if row.run_input else None,
                spec=RunSpec.model_validate(row.spec),
            )
            for row in rows
        ]

    async def active_runs(self, project: str) -> int:
        """The project's runs pending or running, but those a batch's workflow starts."""
        jobs = select(batches.c.batch_id).where(batches.c.kind == BatchKind.job.value)
        query = select(func.count()).where(
            runs.c.project == project,
            runs.c.status.in_([RunStatus.pending.value, RunStatus.running.value]),
            or_(runs.c.batch_id.is_(None), runs.c.batch_id.in_(jobs)),
        )
        return int(await self.db.read(_scalar, query) or 0)

    async def has_run(self, run_id: str) -> bool:
        query = select(runs.c.run_id).where(runs.c.run_id == run_id)
        return await self.db.read(_scalar, query) is not None

    async def fail_pending(self, run_id: str, reason: str) -> bool:
        """End a run that is still pending as failed, saying why; false if it had moved on."""

        def work(conn: Connection) -> bool:
            lock_run(conn, run_id)
            changed = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.status == RunStatus.pending.value)
                .values(
                    status=RunStatus.failed.value,
                    stop_reason=StopReason.error.value,
                    error=reason,
                    ended_at=utcnow(),
                )
            )
            if not changed.rowcount:
                return False
            data = {"status": RunStatus.failed.value, "stop_reason": "error", "error": reason}
            append_event(conn, run_id, "reconcile:failed", EventType.status, data)
            conn.execute(run_secrets.delete().where(run_secrets.c.run_id == run_id))
            notify(conn, run_id)
            return True

        failed = await self.db.write(work)
        self._written(run_id)
        return failed

    async def get_run(self, run_id: str) -> RunView:
        return await self.db.read(_get_run, run_id)

    async def runs_by_id(self, run_ids: list[str], project: str) -> dict[str, RunView]:
        """The project's runs among these ids, in one read; ids it lacks are left out."""
        query = select(runs).where(runs.c.run_id.in_(run_ids), runs.c.project == project)
        return await self.db.read(
            lambda conn: {row.run_id: run_view(row._mapping) for row in conn.execute(query)}
        )

    async def run_spec(self, run_id: str) -> RunSpec:
        spec = await self.db.read(_scalar, select(runs.c.spec).where(runs.c.run_id == run_id))
        if spec is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return RunSpec.model_validate(spec)

    async def sealed_secrets(self, run_id: str) -> str | None:
        query = select(run_secrets.c.sealed).where(run_secrets.c.run_id == run_id)
        return await self.db.read(_scalar, query)

    async def drop_secrets(self, run_id: str) -> None:
        await self.db.write(
            lambda conn: conn.execute(run_secrets.delete().where(run_secrets.c.run_id == run_id))
        )

    async def sealed_callback(self, run_id: str) -> str | None:
        query = select(callback_secrets.c.sealed).where(callback_secrets.c.run_id == run_id)
        return await self.db.read(_scalar, query)

    async def record_callback(
        self, run_id: str, key: str, outcome: CallbackOutcome, *, final: bool
    ) -> None:
        """Keep a delivery attempt's outcome on the run; a final one drops the sealed headers."""

        dumped = self.scrub(run_id, outcome.model_dump(mode="json"))

        def work(conn: Connection) -> None:
            lock_run(conn, run_id)
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(callback=dumped))
            if event_by_key(conn, run_id, key) is None:
                append_event(conn, run_id, key, EventType.callback, dumped)
            if final:
                conn.execute(callback_secrets.delete().where(callback_secrets.c.run_id == run_id))
            notify(conn, run_id)

        await self.db.write(work)
        self._written(run_id)

    async def run_inputs(self, batch_id: str, offset: int, limit: int) -> list[RunInput]:
        """The workflow inputs of a batch's runs, in the order the batch starts them."""
        query = (
            select(runs.c.run_input)
            .where(runs.c.batch_id == batch_id, runs.c.batch_index >= offset)
            .order_by(runs.c.batch_index)
            .limit(limit)
        )
        values = await self.db.read(lambda conn: list(conn.scalars(query)))
        return [RunInput.model_validate(value) for value in values]

    async def list_runs(
        self, where: RunFilter, *, limit: int, offset: int
    ) -> tuple[int, list[RunView]]:
        """The total of runs that pass `where`, and one page of them."""
        query = select(runs).where(*run_conditions(where))
        # A batch's runs in the order it starts them; other listings newest first.
        order = (
            [runs.c.batch_index] if where.batch_id else [runs.c.created_at.desc(), runs.c.run_id]
        )
        page = query.order_by(*order).limit(limit).offset(offset)

        def work(conn: Connection) -> tuple[int, list[RunView]]:
            total = conn.scalar(select(func.count()).select_from(query.subquery()))
            return int(total or 0), [run_view(row._mapping) for row in conn.execute(page)]

        return await self.db.read(work)

    # --- events --------------------------------------------------------------------------------

    async def record(
        self,
        run_id: str,
        key: str,
        type_: EventType,
        data: dict[str, Any],
        *,
        state: BaseModel | StateWrite | None = None,
        usage: Usage | None = None,
        run_fields: dict[str, Any] | None = None,
    ) -> tuple[EventView, bool]:
        """Append one event and, in the same transaction, the run's new state and fields.

        Returns the event and whether this call wrote it; a call whose key was already
        recorded changes nothing and returns the first event. A `StateWrite` made from a
        version that is no longer the stored one raises `StateConflictError`, writing nothing.
        """
        entry = NewEvent(key, type_, data, state=state, usage=usage, run_fields=run_fields)
        return (await self.record_all(run_id, [entry]))[0]

    async def record_all(
        self, run_id: str, entries: list[NewEvent]
    ) -> list[tuple[EventView, bool]]:
        """Record `entries` in order in one transaction, each as `record` would: an entry
        whose key was recorded is returned as it was and writes nothing of its own; the
        states are written one after another, each over the version the one before left."""
        cleaned = self._scrubbed(run_id, entries)

        def work(conn: Connection) -> list[tuple[EventView, bool]]:
            lock_run(conn, run_id)
            return record_entries(conn, run_id, cleaned)

        recorded = await self.db.write(work)
        self._announce(run_id, recorded)
        return recorded

    async def record_attempt(self, run_id: str, entries: list[NewEvent]) -> bool:
        """Record one attempt's entries together, as `record_all` does, unless another
        attempt of the same work recorded its own first (the first entry's key is taken):
        then nothing is written, not even the entries the other attempt did not make.
        Whether these were written."""
        cleaned = self._scrubbed(run_id, entries)

        def work(conn: Connection) -> list[tuple[EventView, bool]] | None:
            lock_run(conn, run_id)
            if cleaned and event_by_key(conn, run_id, cleaned[0].key) is not None:
                return None
            return record_entries(conn, run_id, cleaned)

        recorded = await self.db.write(work)
        if recorded is None:
            return False
        self._announce(run_id, recorded)
        return True

    def _scrubbed(self, run_id: str, entries: list[NewEvent]) -> list[NewEvent]:
        return [
            replace(
                entry,
                data=self.scrub(run_id, entry.data),
                run_fields=self.scrub(run_id, dict(entry.run_fields or {})),
            )
            for entry in entries
        ]

    def _announce(self, run_id: str, recorded: list[tuple[EventView, bool]]) -> None:
        if any(wrote for _, wrote in recorded):
            self._written(run_id)

    async def event_by_key(self, run_id: str, key: str) -> EventView | None:
        return await self.db.read(event_by_key, run_id, key)

    async def snapshot(self, run_id: str, keys: list[str]) -> Snapshot:
        """The events recorded under `keys` and the version of the run's state, in one read
        (the state itself may be in the caller's cache; `state_text` reads it)."""
        version = select(env_states.c.version).where(env_states.c.run_id == run_id)

        def work(conn: Connection) -> Snapshot:
            rows = conn.execute(
                select(events).where(events.c.run_id == run_id, events.c.key.in_(keys))
            )
            found = {row.key: event_view(row._mapping) for row in rows}
            return Snapshot(events=found, state_version=int(conn.scalar(version) or 0))

        return await self.db.read(work)

    async def events(self, run_id: str, where: EventFilter | None = None) -> list[EventView]:
        query = _events_query(run_id, where or EventFilter())
        return await self.db.read(
            lambda conn: [event_view(row._mapping) for row in conn.execute(query)]
        )

    async def append(
        self, run_id: str, entries: list[tuple[str, EventType, dict[str, Any]]]
    ) -> list[bool]:
        """Append events from outside the workflow (logs, patches, artifacts) in one
        transaction; an entry whose key exists is skipped. Returns which were written."""

        def work(conn: Connection) -> list[bool]:
            lock_run(conn, run_id)
            written = []
            for key, type_, data in entries:
                exists = event_by_key(conn, run_id, key) is not None
                if not exists:
                    append_event(conn, run_id, key, type_, data)
                written.append(not exists)
            notify(conn, run_id)
            return written

        written = await self.db.write(work)
        self._written(run_id)
        return written

    async def patch_run(
        self, run_id: str, fields: dict[str, Any], key: str, data: dict[str, Any]
    ) -> None:
        """Set caller-owned fields of a run and record the change as one patch event."""

        def work(conn: Connection) -> None:
            lock_run(conn, run_id)
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(**fields))
            append_event(conn, run_id, key, EventType.patch, data)
            notify(conn, run_id)

        await self.db.write(work)
        self._written(run_id)

    async def forget_payloads(self, run_id: str) -> None:
        """Drop what a run said and was told (its messages, answer and args), keeping its
        status, usage and timing: a run its caller asked not to save, once it has ended."""
        said = [EventType.message.value, EventType.summary.value]

        def work(conn: Connection) -> None:
            lock_run(conn, run_id)
            spec = conn.scalar(select(runs.c.spec).where(runs.c.run_id == run_id)) or {}
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(answer=None, spec={**spec, "args": {}})
            )
            conn.execute(events.delete().where(events.c.run_id == run_id, events.c.type.in_(said)))

        await self.db.write(work)

    async def last_event(self, run_id: str, type_: EventType) -> EventView | None:
        query = (
            select(events)
            .where(events.c.run_id == run_id, events.c.type == type_.value)
            .order_by(events.c.seq.desc())
            .limit(1)
        )

        def work(conn: Connection) -> EventView | None:
            row = conn.execute(query).first()
            return event_view(row._mapping) if row is not None else None

        return await self.db.read(work)

    async def conversation(self, run_id: str) -> list[Message]:
        query = (
            select(events.c.data)
            .where(events.c.run_id == run_id, events.c.type == EventType.message.value)
            .order_by(events.c.seq)
        )
        values = await self.db.read(lambda conn: list(conn.scalars(query)))
        return [Message.model_validate(data) for data in values]

    # --- artifacts -----------------------------------------------------------------------------

    async def put_artifact(self, run_id: str, artifact: ArtifactInfo, key: str) -> None:
        """Add (or replace) an artifact in the run's manifest and record that it did."""
        row = {"run_id": run_id, **artifact.model_dump()}

        def work(conn: Connection) -> None:
            lock_run(conn, run_id)
            conn.execute(
                artifacts.delete().where(
                    artifacts.c.run_id == run_id, artifacts.c.name == artifact.name
                )
            )
            conn.execute(artifacts.insert().values(**row))
            append_event(conn, run_id, key, EventType.artifact, artifact.model_dump(mode="json"))
            notify(conn, run_id)

        await self.db.write(work)
        self._written(run_id)

    async def artifacts(self, run_id: str, name: str | None = None) -> list[ArtifactInfo]:
        conditions = [artifacts.c.run_id == run_id]
        if name is not None:
            conditions.append(artifacts.c.name == name)
        query = select(artifacts).where(*conditions).order_by(artifacts.c.name)

        def work(conn: Connection) -> list[ArtifactInfo]:
            return [
                ArtifactInfo.model_validate({**row._mapping, "created_at": aware(row.created_at)})
                for row in conn.execute(query)
            ]

        return await self.db.read(work)

    # --- environment state ---------------------------------------------------------------------

    async def load_state(self, run_id: str) -> dict[str, Any] | None:
        _, text = await self.state_text(run_id)
        return json.loads(text) if text is not None else None

    async def state_text(self, run_id: str) -> tuple[int, str | None]:
        """The run's state as JSON text, with its version (0 and None while it has none)."""
        return await self.db.read(read_state_text, run_id)


def _scalar(conn: Connection, query: Select[Any]) -> Any:
    return conn.scalar(query)


def _get_run(conn: Connection, run_id: str) -> RunView:
    row = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise RunNotFoundError(f"no run {run_id!r}")
    return run_view(row._mapping)


def run_conditions(where: RunFilter) -> list[Any]:
    """The SQL conditions of a run listing (the exports page through the same)."""
    conditions = []
    if where.task:
        conditions.append(runs.c.spec["taskset_id"].as_string() == where.task[0])
        conditions.append(runs.c.task == where.task[1])
    for column, value in (
        (runs.c.project, where.project),
        (runs.c.batch_id, where.batch_id),
        (runs.c.environment, where.environment),
        (runs.c.scenario, where.scenario),
        (runs.c.status, where.status.value if where.status else None),
        (runs.c.model, where.model),
    ):
        if value:
            conditions.append(column == value)
    if where.taskset_id:
        conditions.append(runs.c.spec["taskset_id"].as_string() == where.taskset_id)
    if where.tag:
        # The tags are a JSON list in the spec: match the tag's JSON text, on every database.
        quoted = _like_literal(json.dumps(where.tag))
        conditions.append(cast(runs.c.spec["tags"], String).like(f"%{quoted}%", escape="\\"))
    if where.run_id_prefix:
        conditions.append(runs.c.run_id.like(f"{_like_literal(where.run_id_prefix)}%", escape="\\"))
    for column, bound, compare in (
        (runs.c.reward, where.min_reward, operator.ge),
        (runs.c.reward, where.max_reward, operator.le),
        (runs.c.created_at, where.created_after, operator.ge),
        (runs.c.created_at, where.created_before, operator.le),
    ):
        if bound is not None:
            conditions.append(compare(column, bound))
    return conditions


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _events_query(run_id: str, where: EventFilter) -> Select[Any]:
    conditions = [events.c.run_id == run_id, events.c.seq > where.after]
    if where.types:
        conditions.append(events.c.type.in_([t.value for t in where.types]))
    if where.exclude_types:
        conditions.append(events.c.type.not_in([t.value for t in where.exclude_types]))
    if where.since is not None:
        conditions.append(events.c.created_at > where.since)
    if where.until is not None:
        conditions.append(events.c.created_at <= where.until)
    return select(events).where(*conditions).order_by(events.c.seq).limit(where.limit)
