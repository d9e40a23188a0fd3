"""Rows of runs and events: how they are written and read back as views."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    ColumnElement,
    Text,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Connection

from loopline.models import (
    CallbackOutcome,
    DeliveryStatus,
    EventType,
    EventView,
    RunSpec,
    RunStatus,
    RunView,
    StopReason,
    Usage,
)
from loopline.store.columns import decode_nul
from loopline.store.database import aware, utcnow
from loopline.store.errors import RunNotFoundError, StateConflictError
from loopline.store.notices import notify
from loopline.store.tables import (
    USAGE_COLUMNS,
    callback_secrets,
    env_state_patches,
    env_states,
    events,
    run_secrets,
    runs,
)
from workflows.contract.names import run_workflow_id
from workflows.contract.payloads import RunInput


@dataclass(frozen=True)
class NewRun:
    run_id: str
    identity_hash: str
    spec: RunSpec
    run_input: RunInput | None = None
    sealed_secrets: str | None = None
    sealed_callback: str | None = None
    batch_index: int | None = None
    # Fields the caller owns, set with the run in the same write (stage, branch, ...).
    caller_fields: dict[str, Any] = field(default_factory=dict)
    incarnation: str = field(default_factory=lambda: uuid.uuid4().hex)


def insert_runs(conn: Connection, new_runs: list[NewRun]) -> None:
    """Insert pending runs with their sealed secrets, each table in one executemany."""
    now = utcnow()
    conn.execute(runs.insert(), [_run_row(new, now) for new in new_runs])
    for table, sealed in (
        (run_secrets, [(new.run_id, new.sealed_secrets) for new in new_runs]),
        (callback_secrets, [(new.run_id, new.sealed_callback) for new in new_runs]),
    ):
        rows = [{"run_id": run_id, "sealed": value} for run_id, value in sealed if value]
        if rows:
            conn.execute(table.insert(), rows)


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
        "incarnation": new.incarnation,
        # executemany needs every row to name the same columns.
        "stage": None,
        "branch": None,
        "client_state": None,
        **new.caller_fields,
    }


def _pending_callback(spec: RunSpec) -> dict[str, Any] | None:
    if spec.callback is None:
        return None
    return CallbackOutcome(status=DeliveryStatus.pending).model_dump(mode="json")


def lock_run(conn: Connection, run_id: str) -> None:
    # Writers of one run queue on its row (SQLite: on BEGIN IMMEDIATE), so that
    # max(seq) + 1 is free and a concurrent writer of the same key sees it recorded.
    locked = conn.execute(
        select(runs.c.run_id).where(runs.c.run_id == run_id).with_for_update()
    ).first()
    if locked is None:
        raise RunNotFoundError(f"no run {run_id!r}")


def event_by_key(conn: Connection, run_id: str, key: str) -> EventView | None:
    row = conn.execute(select(events).where(events.c.run_id == run_id, events.c.key == key)).first()
    return event_view(row._mapping) if row is not None else None


def append_event(
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
    return event_view(row)


# A state is written whole again, as the new base of its patches, once this many patches
# follow its base or when a patch would be over a quarter of the state's length: a reader
# then applies a bounded number of patches to the base.
MAX_STATE_PATCHES = 32
MAX_PATCH_SHARE = 0.25


@dataclass(frozen=True)
class StatePatch:
    """The JSON text of the next version: the previous one's with `removed` characters at
    `at` replaced by `inserted`."""

    at: int
    removed: int
    inserted: str


@dataclass(frozen=True)
class StateWrite:
    """A state as JSON text, written only over the version it was made from (0: the run had
    no state; None: over any), since a write from an older version would lose another's;
    `patch` (None: write it whole) makes it from the stored text of that version."""

    text: str
    base_version: int | None
    patch: StatePatch | None = None


@dataclass(frozen=True)
class NewEvent:
    """One event to record and what its transaction also writes: the run's next state,
    usage to add to its totals and fields to set."""

    key: str
    type: EventType
    data: dict[str, Any]
    state: BaseModel | StateWrite | None = None
    usage: Usage | None = None
    run_fields: dict[str, Any] | None = None


def save_state(conn: Connection, run_id: str, state: BaseModel | StateWrite) -> None:
    """Write the run's state as its next version, as a patch when one is given and small
    enough; a `StateWrite` whose base version is no longer the stored one raises
    `StateConflictError` and writes nothing."""
    if not isinstance(state, StateWrite):
        state = StateWrite(state.model_dump_json(), base_version=None)
    row = conn.execute(
        select(env_states.c.version, env_states.c.base_version).where(env_states.c.run_id == run_id)
    ).first()
    stored = int(row.version) if row is not None else 0
    if state.base_version not in (None, stored):
        raise StateConflictError(
            f"the state of run {run_id} is at version {stored}, not {state.base_version}: "
            "another call wrote it meanwhile; this call is retried against the new state"
        )
    if row is None:
        value = _json_text(conn, state.text)
        conn.execute(env_states.insert().values(run_id=run_id, state=value, version=1))
        return
    patch = state.patch
    if patch is not None and _patchable(patch, state.text, stored - int(row.base_version)):
        conn.execute(
            env_state_patches.insert().values(run_id=run_id, version=stored + 1, **vars(patch))
        )
        conn.execute(
            update(env_states).where(env_states.c.run_id == run_id).values(version=stored + 1)
        )
        return
    conn.execute(env_state_patches.delete().where(env_state_patches.c.run_id == run_id))
    conn.execute(
        update(env_states)
        .where(env_states.c.run_id == run_id)
        .values(state=_json_text(conn, state.text), version=stored + 1, base_version=stored + 1)
    )


def _patchable(patch: StatePatch, text: str, patches: int) -> bool:
    return patches < MAX_STATE_PATCHES and len(patch.inserted) <= len(text) * MAX_PATCH_SHARE


def read_state_text(conn: Connection, run_id: str) -> tuple[int, str | None]:
    """The run's state as JSON text and its version (0 and None while it has none): its
    base with the patches after it applied, read in one statement (one snapshot)."""
    base = select(
        literal(0).label("kind"),
        env_states.c.version,
        cast(env_states.c.state, Text).label("text"),
        null().label("at"),
        null().label("removed"),
    ).where(env_states.c.run_id == run_id)
    patches = (
        select(
            literal(1),
            env_state_patches.c.version,
            env_state_patches.c.inserted,
            env_state_patches.c.at,
            env_state_patches.c.removed,
        )
        .join(env_states, env_states.c.run_id == env_state_patches.c.run_id)
        .where(
            env_state_patches.c.run_id == run_id,
            env_state_patches.c.version > env_states.c.base_version,
            env_state_patches.c.version <= env_states.c.version,
        )
    )
    rows = conn.execute(union_all(base, patches).order_by("kind", "version")).all()
    if not rows:
        return 0, None
    version, text = int(rows[0].version), rows[0].text
    for patch in rows[1:]:
        inserted = decode_nul(patch.text)
        text = text[: patch.at] + inserted + text[patch.at + patch.removed :]
    return version, text


def _json_text(conn: Connection, text: str) -> ColumnElement[Any]:
    """JSON text as the state column's value, so that it is not serialized a second time
    (PostgreSQL types it as json, which keeps the text as it is; SQLite keeps it as text)."""
    value = literal(text, Text)
    return cast(value, JSON) if conn.dialect.name == "postgresql" else value


def record_entry(conn: Connection, run_id: str, entry: NewEvent) -> tuple[EventView, bool]:
    """Append the entry's event and write its state, unless its key was recorded before:
    then the event as recorded, and nothing written."""
    existing = event_by_key(conn, run_id, entry.key)
    if existing is not None:
        return existing, False
    written = append_event(conn, run_id, entry.key, entry.type, entry.data)
    if entry.state is not None:
        save_state(conn, run_id, entry.state)
    return written, True


def record_entries(
    conn: Connection, run_id: str, entries: list[NewEvent]
) -> list[tuple[EventView, bool]]:
    """Record each entry (see record_entry) and set the run fields of those written, in
    the caller's transaction, which holds the run's lock."""
    recorded = [record_entry(conn, run_id, entry) for entry in entries]
    written = [entry for entry, (_, wrote) in zip(entries, recorded, strict=True) if wrote]
    fields = run_changes(written)
    if fields:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(**fields))
    if written:
        notify(conn, run_id)
    return recorded


def run_changes(entries: list[NewEvent]) -> dict[str, Any]:
    """The run columns these entries set: their fields (a later entry's win) and the sum
    of their usages added to the run's totals."""
    fields: dict[str, Any] = {}
    usages = [entry.usage for entry in entries if entry.usage is not None]
    for entry in entries:
        fields.update(entry.run_fields or {})
    if usages:
        total = Usage.model_validate(
            {name: sum(getattr(usage, name) for usage in usages) for name in USAGE_COLUMNS}
        )
        fields.update(usage_increments(total))
    return fields


def usage_increments(usage: Usage) -> dict[str, Any]:
    """Column updates that add `usage` to a run's totals."""
    return {name: runs.c[name] + getattr(usage, name) for name in USAGE_COLUMNS}


def run_view(row: Any) -> RunView:
    spec = RunSpec.model_validate(row["spec"])
    return RunView(
        run_id=row["run_id"],
        workflow_id=run_workflow_id(row["run_id"]),
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
        origin=spec.origin,
        incarnation=row["incarnation"] or "",
    )


def event_view(row: Any) -> EventView:
    return EventView(
        seq=row["seq"],
        key=row["key"],
        type=EventType(row["type"]),
        created_at=aware(row["created_at"]),
        data=row["data"],
    )
