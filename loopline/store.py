"""The trace store: the read model of runs, their events and their environment state.

SQLite by default, other databases by SQLAlchemy URL. Activities write events through
`record`, which is idempotent by (run_id, key): a retried activity finds what its first
attempt committed instead of writing it twice. Each event also gets the next sequence
number of its run, so readers page and resume by (run_id, seq).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from loopline.database import Database, aware, utcnow
from loopline.models import (
    ArtifactInfo,
    CallbackOutcome,
    DeliveryStatus,
    EventType,
    EventView,
    Message,
    RunInput,
    RunSpec,
    RunStatus,
    RunView,
    StopReason,
    Usage,
)
from loopline.tables import (
    USAGE_COLUMNS,
    artifacts,
    callback_secrets,
    env_states,
    events,
    run_secrets,
    runs,
)


class RunNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class NewRun:
    run_id: str
    identity_hash: str
    spec: RunSpec
    run_input: RunInput | None = None
    sealed_secrets: str | None = None
    sealed_callback: str | None = None
    batch_index: int | None = None


def insert_runs(conn: Connection, new_runs: list[NewRun]) -> None:
    """Insert pending runs with their sealed secrets, each table in one executemany."""
    now = utcnow()
    conn.execute(runs.insert(), [_run_row(new, now) for new in new_runs])
    sealed = [
        {"run_id": new.run_id, "sealed": new.sealed_secrets}
        for new in new_runs
        if new.sealed_secrets is not None
    ]
    if sealed:
        conn.execute(run_secrets.insert(), sealed)
    callbacks = [
        {"run_id": new.run_id, "sealed": new.sealed_callback}
        for new in new_runs
        if new.sealed_callback is not None
    ]
    if callbacks:
        conn.execute(callback_secrets.insert(), callbacks)


def _run_row(new: NewRun, now: datetime) -> dict[str, Any]:
    spec = new.spec
    return {
        "run_id": new.run_id,
        "identity_hash": new.identity_hash,
        "environment": spec.environment,
        "scenario": spec.scenario,
        "model": spec.model,
        "spec": spec.model_dump(mode="json"),
        "status": RunStatus.pending.value,
        "created_at": now,
        "run_input": new.run_input.model_dump(mode="json") if new.run_input else None,
        "callback": _pending_callback(spec),
        "batch_id": spec.batch_id,
        "batch_index": new.batch_index,
        "task": spec.task,
        "project": spec.project,
    }


def _pending_callback(spec: RunSpec) -> dict[str, Any] | None:
    if spec.callback is None:
        return None
    return CallbackOutcome(status=DeliveryStatus.pending).model_dump(mode="json")


@dataclass(frozen=True)
class Snapshot:
    events: dict[str, EventView]
    state: dict[str, Any] | None


class TraceStore:
    """Async facade over SQLAlchemy Core; each call is one unit of work in a store thread."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self._reader = self.db.reader
        self._writer = self.db.writer
        self._call = self.db.call

    async def create_schema(self) -> None:
        await self.db.create_schema()

    async def close(self) -> None:
        await self.db.close()

    # --- runs ----------------------------------------------------------------------------------

    async def create_run(
        self,
        run_id: str,
        identity_hash: str,
        spec: RunSpec,
        sealed_secrets: str | None = None,
        *,
        run_input: RunInput | None = None,
        sealed_callback: str | None = None,
    ) -> str | None:
        """Insert a pending run; if the id exists, return the identity hash it was made with."""
        new = NewRun(run_id, identity_hash, spec, run_input, sealed_secrets, sealed_callback)
        return await self._call(self._create_run, new)

    def _create_run(self, new: NewRun) -> str | None:
        try:
            with self._writer.begin() as conn:
                insert_runs(conn, [new])
            return None
        except IntegrityError:
            with self._reader.connect() as conn:
                existing = conn.scalar(
                    select(runs.c.identity_hash).where(runs.c.run_id == new.run_id)
                )
            if existing is None:
                raise
            return str(existing)

    async def get_run(self, run_id: str) -> RunView:
        return await self._call(self._get_run, run_id)

    def _get_run(self, run_id: str) -> RunView:
        with self._reader.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return _run_view(row._mapping)

    async def run_spec(self, run_id: str) -> RunSpec:
        return await self._call(self._run_spec, run_id)

    def _run_spec(self, run_id: str) -> RunSpec:
        with self._reader.connect() as conn:
            spec = conn.scalar(select(runs.c.spec).where(runs.c.run_id == run_id))
        if spec is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return RunSpec.model_validate(spec)

    async def sealed_secrets(self, run_id: str) -> str | None:
        def work() -> str | None:
            with self._reader.connect() as conn:
                return conn.scalar(
                    select(run_secrets.c.sealed).where(run_secrets.c.run_id == run_id)
                )

        return await self._call(work)

    async def drop_secrets(self, run_id: str) -> None:
        def work() -> None:
            with self._writer.begin() as conn:
                conn.execute(run_secrets.delete().where(run_secrets.c.run_id == run_id))

        await self._call(work)

    async def sealed_callback(self, run_id: str) -> str | None:
        def work() -> str | None:
            with self._reader.connect() as conn:
                return conn.scalar(
                    select(callback_secrets.c.sealed).where(callback_secrets.c.run_id == run_id)
                )

        return await self._call(work)

    async def record_callback(
        self, run_id: str, key: str, outcome: CallbackOutcome, *, final: bool
    ) -> None:
        """Keep a delivery attempt's outcome on the run; a final one drops the sealed headers."""

        def work() -> None:
            with self._writer.begin() as conn:
                _lock_run(conn, run_id)
                dumped = outcome.model_dump(mode="json")
                conn.execute(update(runs).where(runs.c.run_id == run_id).values(callback=dumped))
                if _event_by_key(conn, run_id, key) is None:
                    _append(conn, run_id, key, EventType.callback, dumped)
                if final:
                    conn.execute(
                        callback_secrets.delete().where(callback_secrets.c.run_id == run_id)
                    )

        await self._call(work)

    async def run_inputs(self, batch_id: str, offset: int, limit: int) -> list[RunInput]:
        """The workflow inputs of a batch's runs, in the order the batch starts them."""
        query = (
            select(runs.c.run_input)
            .where(runs.c.batch_id == batch_id, runs.c.batch_index >= offset)
            .order_by(runs.c.batch_index)
            .limit(limit)
        )

        def work() -> list[RunInput]:
            with self._reader.connect() as conn:
                return [RunInput.model_validate(value) for value in conn.scalars(query)]

        return await self._call(work)

    async def run_project(self, run_id: str) -> str:
        def work() -> str:
            with self._reader.connect() as conn:
                project = conn.scalar(select(runs.c.project).where(runs.c.run_id == run_id))
            if project is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            return str(project)

        return await self._call(work)

    async def list_runs(
        self,
        *,
        project: str | None = None,
        environment: str | None = None,
        scenario: str | None = None,
        status: RunStatus | None = None,
        batch_id: str | None = None,
        task: tuple[str, str] | None = None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[RunView]]:
        """Runs, filtered; `task` is (taskset id, slug)."""
        conditions = []
        if task:
            conditions.append(runs.c.spec["taskset_id"].as_string() == task[0])
            conditions.append(runs.c.task == task[1])
        if project:
            conditions.append(runs.c.project == project)
        if batch_id:
            conditions.append(runs.c.batch_id == batch_id)
        if environment:
            conditions.append(runs.c.environment == environment)
        if scenario:
            conditions.append(runs.c.scenario == scenario)
        if status:
            conditions.append(runs.c.status == status.value)
        query = select(runs).where(*conditions)
        # A batch's runs in the order it starts them; other listings newest first.
        order = [runs.c.batch_index] if batch_id else [runs.c.created_at.desc(), runs.c.run_id]
        page = query.order_by(*order).limit(limit).offset(offset)

        def work() -> tuple[int, list[RunView]]:
            with self._reader.connect() as conn:
                total = conn.scalar(select(func.count()).select_from(query.subquery()))
                return int(total or 0), [_run_view(row._mapping) for row in conn.execute(page)]

        return await self._call(work)

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
        return await self._call(
            self._record, run_id, key, type_, data, state, usage, run_fields or {}
        )

    def _record(
        self,
        run_id: str,
        key: str,
        type_: EventType,
        data: dict[str, Any],
        state: BaseModel | None,
        usage: Usage | None,
        run_fields: dict[str, Any],
    ) -> tuple[EventView, bool]:
        changes = dict(run_fields)
        if usage is not None:
            changes.update(
                model_calls=runs.c.model_calls + usage.model_calls,
                prompt_tokens=runs.c.prompt_tokens + usage.prompt_tokens,
                completion_tokens=runs.c.completion_tokens + usage.completion_tokens,
                reasoning_tokens=runs.c.reasoning_tokens + usage.reasoning_tokens,
                prompt_cost=runs.c.prompt_cost + usage.prompt_cost,
                output_cost=runs.c.output_cost + usage.output_cost,
                unpriced_calls=runs.c.unpriced_calls + usage.unpriced_calls,
            )
        with self._writer.begin() as conn:
            _lock_run(conn, run_id)
            existing = _event_by_key(conn, run_id, key)
            if existing is not None:
                return existing, False
            written = _append(conn, run_id, key, type_, data)
            if state is not None:
                _save_state(conn, run_id, state)
            if changes:
                conn.execute(update(runs).where(runs.c.run_id == run_id).values(**changes))
            return written, True

    async def event_by_key(self, run_id: str, key: str) -> EventView | None:
        def work() -> EventView | None:
            with self._reader.connect() as conn:
                return _event_by_key(conn, run_id, key)

        return await self._call(work)

    async def snapshot(self, run_id: str, keys: list[str]) -> Snapshot:
        """The events recorded under `keys` and the environment state, in one read."""

        def work() -> Snapshot:
            with self._reader.connect() as conn:
                rows = conn.execute(
                    select(events).where(events.c.run_id == run_id, events.c.key.in_(keys))
                )
                found = {row.key: _event_view(row._mapping) for row in rows}
                state = conn.scalar(select(env_states.c.state).where(env_states.c.run_id == run_id))
            return Snapshot(events=found, state=dict(state) if state is not None else None)

        return await self._call(work)

    async def events(
        self,
        run_id: str,
        *,
        after: int = 0,
        limit: int | None = None,
        types: list[EventType] | None = None,
        exclude_types: list[EventType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[EventView]:
        conditions = [events.c.run_id == run_id, events.c.seq > after]
        if types:
            conditions.append(events.c.type.in_([t.value for t in types]))
        if exclude_types:
            conditions.append(events.c.type.not_in([t.value for t in exclude_types]))
        if since is not None:
            conditions.append(events.c.created_at > since)
        if until is not None:
            conditions.append(events.c.created_at <= until)
        query = select(events).where(*conditions).order_by(events.c.seq).limit(limit)

        def work() -> list[EventView]:
            with self._reader.connect() as conn:
                return [_event_view(row._mapping) for row in conn.execute(query)]

        return await self._call(work)

    async def last_seq(self, run_id: str) -> int:
        query = select(func.max(events.c.seq)).where(events.c.run_id == run_id)

        def work() -> int:
            with self._reader.connect() as conn:
                return int(conn.scalar(query) or 0)

        return await self._call(work)

    async def append(
        self, run_id: str, entries: list[tuple[str, EventType, dict[str, Any]]]
    ) -> list[bool]:
        """Append events from outside the workflow (logs, patches, artifacts) in one
        transaction; an entry whose key exists is skipped. Returns which were written."""

        def work() -> list[bool]:
            with self._writer.begin() as conn:
                _lock_run(conn, run_id)
                written = []
                for key, type_, data in entries:
                    exists = _event_by_key(conn, run_id, key) is not None
                    if not exists:
                        _append(conn, run_id, key, type_, data)
                    written.append(not exists)
                return written

        return await self._call(work)

    async def patch_run(
        self, run_id: str, fields: dict[str, Any], key: str, data: dict[str, Any]
    ) -> None:
        """Set caller-owned fields of a run and record the change as one patch event."""

        def work() -> None:
            with self._writer.begin() as conn:
                _lock_run(conn, run_id)
                conn.execute(update(runs).where(runs.c.run_id == run_id).values(**fields))
                _append(conn, run_id, key, EventType.patch, data)

        await self._call(work)

    async def forget_payloads(self, run_id: str) -> None:
        """Drop what a run said and was told (its messages, answer and args), keeping its
        status, usage and timing: a run its caller asked not to save, once it has ended."""

        def work() -> None:
            with self._writer.begin() as conn:
                _lock_run(conn, run_id)
                spec = conn.scalar(select(runs.c.spec).where(runs.c.run_id == run_id)) or {}
                conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run_id)
                    .values(answer=None, spec={**spec, "args": {}})
                )
                conn.execute(
                    events.delete().where(
                        events.c.run_id == run_id,
                        events.c.type.in_([EventType.message.value, EventType.summary.value]),
                    )
                )

        await self._call(work)

    # --- artifacts -----------------------------------------------------------------------------

    async def put_artifact(self, run_id: str, artifact: ArtifactInfo, key: str) -> None:
        """Add (or replace) an artifact in the run's manifest and record that it did."""
        row = {"run_id": run_id, **artifact.model_dump()}

        def work() -> None:
            with self._writer.begin() as conn:
                _lock_run(conn, run_id)
                conn.execute(
                    artifacts.delete().where(
                        artifacts.c.run_id == run_id, artifacts.c.name == artifact.name
                    )
                )
                conn.execute(artifacts.insert().values(**row))
                _append(conn, run_id, key, EventType.artifact, artifact.model_dump(mode="json"))

        await self._call(work)

    async def artifacts(self, run_id: str, name: str | None = None) -> list[ArtifactInfo]:
        conditions = [artifacts.c.run_id == run_id]
        if name is not None:
            conditions.append(artifacts.c.name == name)
        query = select(artifacts).where(*conditions).order_by(artifacts.c.name)

        def work() -> list[ArtifactInfo]:
            with self._reader.connect() as conn:
                return [
                    ArtifactInfo.model_validate(
                        {**row._mapping, "created_at": aware(row.created_at)}
                    )
                    for row in conn.execute(query)
                ]

        return await self._call(work)

    async def last_event(self, run_id: str, type_: EventType) -> EventView | None:
        query = (
            select(events)
            .where(events.c.run_id == run_id, events.c.type == type_.value)
            .order_by(events.c.seq.desc())
            .limit(1)
        )

        def work() -> EventView | None:
            with self._reader.connect() as conn:
                row = conn.execute(query).first()
            return _event_view(row._mapping) if row is not None else None

        return await self._call(work)

    async def conversation(self, run_id: str) -> list[Message]:
        query = (
            select(events.c.data)
            .where(events.c.run_id == run_id, events.c.type == EventType.message.value)
            .order_by(events.c.seq)
        )

        def work() -> list[Message]:
            with self._reader.connect() as conn:
                return [Message.model_validate(data) for data in conn.scalars(query)]

        return await self._call(work)

    # --- environment state ---------------------------------------------------------------------

    async def load_state(self, run_id: str) -> dict[str, Any] | None:
        def work() -> dict[str, Any] | None:
            with self._reader.connect() as conn:
                state = conn.scalar(select(env_states.c.state).where(env_states.c.run_id == run_id))
            return dict(state) if state is not None else None

        return await self._call(work)


def _lock_run(conn: Connection, run_id: str) -> None:
    # Writers of one run queue on its row (SQLite: on BEGIN IMMEDIATE), so that
    # max(seq) + 1 is free and a concurrent writer of the same key sees it recorded.
    locked = conn.execute(
        select(runs.c.run_id).where(runs.c.run_id == run_id).with_for_update()
    ).first()
    if locked is None:
        raise RunNotFoundError(f"no run {run_id!r}")


def _event_by_key(conn: Connection, run_id: str, key: str) -> EventView | None:
    row = conn.execute(select(events).where(events.c.run_id == run_id, events.c.key == key)).first()
    return _event_view(row._mapping) if row is not None else None


def _append(
    conn: Connection, run_id: str, key: str, type_: EventType, data: dict[str, Any]
) -> EventView:
    last = conn.scalar(select(func.max(events.c.seq)).where(events.c.run_id == run_id))
    row = {
        "run_id": run_id,
        "seq": int(last or 0) + 1,
        "key": key,
        "type": type_.value,
        "data": data,
        "created_at": utcnow(),
    }
    conn.execute(events.insert().values(**row))
    return _event_view(row)


def _save_state(conn: Connection, run_id: str, state: BaseModel) -> None:
    dumped = state.model_dump(mode="json")
    changed = conn.execute(
        update(env_states).where(env_states.c.run_id == run_id).values(state=dumped)
    )
    if changed.rowcount == 0:
        conn.execute(env_states.insert().values(run_id=run_id, state=dumped))


def _run_view(row: Any) -> RunView:
    spec = RunSpec.model_validate(row["spec"])
    return RunView(
        run_id=row["run_id"],
        workflow_id=workflow_id_for(row["run_id"]),
        project=row["project"],
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
        usage=Usage.model_validate({name: row[name] for name in USAGE_COLUMNS}),
        created_at=aware(row["created_at"]),
        ended_at=aware(row["ended_at"]),
        torn_down=row["torn_down"],
        session=spec.session,
        pending_tool_calls=row["pending_tool_calls"],
        stage=row["stage"],
        branch=row["branch"],
        output=row["output"],
        client_state=row["client_state"],
        error_message=row["error_message"],
        success=row["success"],
        evaluations=row["evaluations"],
        callback=row["callback"],
        batch_id=spec.batch_id,
        taskset_id=spec.taskset_id,
        task=spec.task,
        rollout=spec.rollout,
        metadata=spec.metadata,
        tags=spec.tags,
    )


def _event_view(row: Any) -> EventView:
    return EventView(
        seq=row["seq"],
        type=EventType(row["type"]),
        created_at=aware(row["created_at"]),
        data=row["data"],
    )


RUN_WORKFLOW_PREFIX = "run-"


def workflow_id_for(run_id: str) -> str:
    return f"{RUN_WORKFLOW_PREFIX}{run_id}"


def run_id_of(workflow_id: str) -> str | None:
    """The run a workflow id belongs to; None for other workflows (batches)."""
    if workflow_id.startswith(RUN_WORKFLOW_PREFIX):
        return workflow_id.removeprefix(RUN_WORKFLOW_PREFIX)
    return None


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[TraceStore]:
    store = TraceStore(url)
    try:
        await store.create_schema()
        yield store
    finally:
        await store.close()
