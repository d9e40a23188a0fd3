"""The trace store: idempotent, ordered event appends with state in the same transaction."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from loopline.models import EventFilter, EventType, RunSpec, Usage
from loopline.store import TraceStore, open_stores
from loopline.store.columns import decode_nul, encode_nul
from loopline.store.database import utcnow
from loopline.store.rows import NewRun
from loopline.store.trace import RunFilter

SPEC = RunSpec(environment="e", scenario="s", args={}, model="scripted", max_steps=5)


class Box(BaseModel):
    items: list[int]


POSTGRES_SERVER = os.environ.get(
    "LOOPLINE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    name = f"loopline_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_SERVER}: {error.orig}")
    try:
        yield make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TraceStore]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'trace.db'}"
        else:
            url = stack.enter_context(scratch_postgres_database())
        async with open_stores(url) as opened:
            assert await opened.runs.create_run(NewRun("r1", "hash", SPEC)) is None
            yield opened.runs


async def test_same_key_is_recorded_once_with_its_first_state(store: TraceStore) -> None:
    first, wrote = await store.record(
        "r1", "k", EventType.log, {"n": 1}, state=Box(items=[1]), usage=Usage(model_calls=1)
    )
    again, wrote_again = await store.record(
        "r1", "k", EventType.log, {"n": 2}, state=Box(items=[1, 1]), usage=Usage(model_calls=1)
    )
    assert (wrote, wrote_again) == (True, False)
    assert again == first
    assert await store.load_state("r1") == {"items": [1]}
    assert (await store.get_run("r1")).usage.model_calls == 1


async def test_concurrent_appends_get_gapless_unique_seqs(store: TraceStore) -> None:
    keys = [f"k{n}" for n in range(40)]
    await asyncio.gather(
        *(store.record("r1", key, EventType.log, {"key": key}) for key in keys + keys)
    )
    events = await store.events("r1")
    assert [event.seq for event in events] == list(range(1, 41))
    assert sorted(event.data["key"] for event in events) == sorted(keys)
    assert [event.seq for event in await store.events("r1", EventFilter(after=38))] == [39, 40]


async def test_create_run_reports_the_existing_identity(store: TraceStore) -> None:
    assert await store.create_run(NewRun("r1", "other", SPEC)) == "hash"
    assert (await store.run_spec("r1")).environment == "e"


async def test_text_with_nul_bytes_round_trips(store: TraceStore) -> None:
    """PostgreSQL refuses NUL in text columns; a model may still reply with one."""
    answer = "before\x00after \ue000 and \ue0000"
    await store.record(
        "r1",
        "reply",
        EventType.message,
        {"content": answer},
        run_fields={"answer": answer, "error": "\x00"},
    )
    await store.patch_run("r1", {"stage": "a\x00b", "error_message": "\ue000"}, "p", {})
    run = await store.get_run("r1")
    assert (run.answer, run.error) == (answer, "\x00")
    assert (run.stage, run.error_message) == ("a\x00b", "\ue000")
    assert (await store.events("r1"))[0].data == {"content": answer}


@pytest.mark.parametrize("text", ["", "plain", "\x00", "\ue000", "\ue000\ue000", "\ue0000\x00"])
def test_nul_escaping_is_reversible(text: str) -> None:
    stored = encode_nul(text)
    assert "\x00" not in stored
    assert decode_nul(stored) == text


async def test_runs_are_listed_by_model_tag_taskset_reward_time_and_id(
    store: TraceStore,
) -> None:
    tagged = SPEC.model_copy(
        update={"model": "openai/gpt-x", "tags": ["nightly", "50%_off"], "taskset_id": "ts-1"}
    )
    assert await store.create_run(NewRun("r2", "hash", tagged)) is None
    cutoff = utcnow()
    assert (
        await store.create_run(NewRun("x3", "hash", SPEC.model_copy(update={"tags": ["n"]})))
        is None
    )
    for run_id, reward in (("r1", 0.2), ("r2", 0.9)):
        await store.record(run_id, "reward", EventType.reward, {}, run_fields={"reward": reward})

    async def listed(**where: Any) -> list[str]:
        _, views = await store.list_runs(RunFilter(**where), limit=10, offset=0)
        return sorted(view.run_id for view in views)

    assert await listed(model="openai/gpt-x") == ["r2"]
    assert await listed(tag="nightly") == ["r2"]
    # LIKE's wildcards in a tag are matched as themselves, and a tag is matched whole.
    assert await listed(tag="50%_off") == ["r2"]
    assert await listed(tag="5%") == [] and await listed(tag="night") == []
    assert await listed(taskset_id="ts-1") == ["r2"]
    assert await listed(min_reward=0.5) == ["r2"]
    assert await listed(max_reward=0.5) == ["r1"]
    assert await listed(created_after=cutoff) == ["x3"]
    assert await listed(created_before=cutoff) == ["r1", "r2"]
    assert await listed(run_id_prefix="r") == ["r1", "r2"]
    assert await listed(run_id_prefix="_") == []
