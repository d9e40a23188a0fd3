"""One scripted agent episode on Loopline and on its peers, interleaved in one run.

Each step of the episode is one model call that returns one tool call, and that tool's call;
the last step's model call returns the answer instead (N model calls, N-1 tool calls), as
bench/stack.py's Loopline episode does. The model and the tool are in memory: the model
returns a tool-call dict, the tool a short string. The systems:

  plain              a plain asyncio loop
  langgraph          a LangGraph graph, a node for the model and one for the tool, with
                     SqliteSaver checkpointing every step before the next (durability="sync")
  dbos               a DBOS workflow on a SQLite system database, each call a @DBOS.step
  temporal-local     a bare Temporal workflow, model and tool local activities (the floor)
  temporal-activity  the same with regular activities
  loopline-sqlite    a Loopline run through the real stack (bench/stack.py), SQLite store
  loopline-postgres  the same on the PostgreSQL store, in a scratch database of
                     LOOPLINE_TEST_POSTGRES's server (default postgres@127.0.0.1:5432)

The Temporal and Loopline systems share one dev server, tuned as `loopline up` tunes it.
LangGraph and DBOS run through their synchronous APIs, which are their faster ones here.
After a warm-up round, each repeat runs every system once in turn (starting one further
along each time); the figures are medians over repeats. Durable bytes are Temporal history
bytes, and the growth of the database's used pages (SQLite) or size (PostgreSQL) over the
run. This machine is shared: the load average is printed and nothing is asserted.

    pip install -e '.[bench]'
    python -m bench.peers [--steps 100] [--repeats 5] [--only plain,dbos,...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, NotRequired, TypeVar

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

# pydantic, which converts the activities' values, needs this TypedDict on Python 3.11.
from typing_extensions import TypedDict

# The workflow below runs in the sandbox; what the bench itself uses passes through.
with workflow.unsafe.imports_passed_through():
    import pytest
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import Engine

    from bench.stack import (
        episode,
        history_bytes,
        loopline_run,
        loopline_worker,
        tuned_dev_server,
    )
    from loopline.environment.registry import Registry
    from loopline.settings import DEFAULT_ENVIRONMENT_MODULES
    from loopline.store import open_stores
    from tests.loopline.store.test_trace import scratch_postgres_database

TOPIC, ANSWER = "Peru", "Lima"
WARM_UP_STEPS = 5
ACTIVITY_TIMEOUT = timedelta(seconds=10)
REFERENCE = "loopline-sqlite"


class ToolCall(TypedDict):
    id: str
    name: str
    arguments: dict[str, str]


class Message(TypedDict):
    role: Literal["user", "assistant", "tool"]
    content: str
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]


@dataclass(frozen=True)
class Ask:
    step: int
    steps: int


def prompt() -> Message:
    return {"role": "user", "content": f"What is the capital city of {TOPIC}?"}


def scripted_reply(ask: Ask) -> Message:
    """What Loopline's scripted model of `episode(ask.steps)` replies at `ask.step`."""
    if ask.step < ask.steps:
        call = ToolCall(id=f"call_{ask.step}", name="lookup", arguments={"topic": TOPIC})
        return {"role": "assistant", "content": "", "tool_calls": [call]}
    return {"role": "assistant", "content": ANSWER}


def lookup(call: ToolCall) -> str:
    """The trivia environment's `lookup`, for the one country of the episode."""
    return f"{call['arguments']['topic']}: capital city {ANSWER}."


def tool_message(call: ToolCall, content: str) -> Message:
    return {"role": "tool", "content": content, "tool_call_id": call["id"]}


@activity.defn(name="model")
async def model_activity(ask: Ask) -> Message:
    return scripted_reply(ask)


@activity.defn(name="tool")
async def tool_activity(call: ToolCall) -> str:
    return lookup(call)


async def play(
    steps: int,
    model: Callable[[Ask], Awaitable[Message]],
    tool: Callable[[ToolCall], Awaitable[str]],
) -> str:
    """The episode's loop, with `model` and `tool` called however the system calls them;
    returns the answer."""
    messages = [prompt()]
    for step in range(1, steps + 1):
        reply = await model(Ask(step, steps))
        messages.append(reply)
        for call in reply.get("tool_calls", []):
            messages.append(tool_message(call, await tool(call)))
    return messages[-1]["content"]


Argument = TypeVar("Argument")
Result = TypeVar("Result")


@dataclass(frozen=True)
class BareInput:
    steps: int
    local: bool


@workflow.defn
class BareEpisode:
    """The episode as a bare Temporal workflow: the conversation lives in the workflow."""

    def __init__(self) -> None:
        self.local = False

    @workflow.run
    async def run(self, spec: BareInput) -> str:
        self.local = spec.local
        return await play(spec.steps, self._model, self._tool)

    async def _model(self, ask: Ask) -> Message:
        return await self._call(model_activity, ask)

    async def _tool(self, call: ToolCall) -> str:
        return await self._call(tool_activity, call)

    async def _call(
        self, function: Callable[[Argument], Awaitable[Result]], argument: Argument
    ) -> Result:
        if self.local:
            return await workflow.execute_local_activity(
                function, argument, start_to_close_timeout=ACTIVITY_TIMEOUT
            )
        return await workflow.execute_activity(
            function, argument, start_to_close_timeout=ACTIVITY_TIMEOUT
        )


@dataclass(frozen=True)
class Sample:
    seconds: float
    history_bytes: int | None = None
    database_bytes: int | None = None


Runner = Callable[[int], Awaitable[Sample]]


class Unavailable(Exception):
    """A system that cannot run on this machine; the others still do."""


@dataclass
class Bench:
    """What the systems' set-ups share. Whatever they start is stopped when `stack` closes,
    in the reverse order: workers before their server, stores before their database."""

    stack: AsyncExitStack
    folder: Path
    registry: Registry
    _client: Client | None = field(default=None, init=False)

    async def temporal(self) -> Client:
        """The client of the one dev server, started for the first system that needs it."""
        if self._client is None:
            server = await tuned_dev_server()
            self.stack.push_async_callback(server.shutdown)
            self._client = server.client
        return self._client


def timed_answer(started: float, answer: str) -> float:
    elapsed = time.perf_counter() - started
    assert answer == ANSWER, answer
    return elapsed


def sqlite_used_bytes(path: Path) -> int:
    """The bytes of the database's used pages as a new reader sees them, so a WAL's pages
    not yet checkpointed count, and pages freed for reuse do not."""
    connection = sqlite3.connect(path)
    try:
        pages, free, size = (
            int(connection.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("page_count", "freelist_count", "page_size")
        )
    finally:
        connection.close()
    return (pages - free) * size


def postgres_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        size = connection.execute(text("SELECT pg_database_size(current_database())"))
        return int(size.scalar_one())


async def in_thread(episode_seconds: Callable[[int], float], steps: int, database: Path) -> Sample:
    """A synchronous system's episode, off the event loop the Temporal workers share."""
    before = sqlite_used_bytes(database)
    seconds = await asyncio.to_thread(episode_seconds, steps)
    return Sample(seconds, database_bytes=sqlite_used_bytes(database) - before)


async def open_plain(bench: Bench) -> Runner:
    async def run(steps: int) -> Sample:
        started = time.perf_counter()
        return Sample(timed_answer(started, await play(steps, model_activity, tool_activity)))

    return run


class GraphState(TypedDict):
    steps: int
    step: int
    # Appended to by each node; a checkpoint holds the whole list.
    messages: Annotated[list[Message], operator.add]


def model_node(state: GraphState) -> dict[str, object]:
    step = state["step"] + 1
    return {"step": step, "messages": [scripted_reply(Ask(step, state["steps"]))]}


def tool_node(state: GraphState) -> dict[str, list[Message]]:
    calls = state["messages"][-1].get("tool_calls", [])
    return {"messages": [tool_message(call, lookup(call)) for call in calls]}


def called_a_tool(state: GraphState) -> bool:
    return bool(state["messages"][-1].get("tool_calls"))


async def open_langgraph(bench: Bench) -> Runner:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    database = bench.folder / "langgraph.db"
    saver = bench.stack.enter_context(SqliteSaver.from_conn_string(str(database)))
    builder = StateGraph(GraphState)
    builder.add_node("model", model_node)
    builder.add_node("tool", tool_node)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", called_a_tool, {True: "tool", False: END})
    builder.add_edge("tool", "model")
    graph = builder.compile(checkpointer=saver)

    def episode_seconds(steps: int) -> float:
        config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
        start: GraphState = {"steps": steps, "step": 0, "messages": [prompt()]}
        started = time.perf_counter()
        # "sync": each checkpoint is written before the next step starts, as a durable
        # system must; the default writes it while the next step runs.
        state = graph.invoke(start, config, durability="sync")
        return timed_answer(started, state["messages"][-1]["content"])

    async def run(steps: int) -> Sample:
        return await in_thread(episode_seconds, steps, database)

    return run


async def open_dbos(bench: Bench) -> Runner:
    from dbos import DBOS

    database = bench.folder / "dbos.sqlite"
    model = DBOS.step(name="model")(scripted_reply)
    tool = DBOS.step(name="tool")(lookup)

    # `play`'s loop, synchronous: DBOS's async steps write their records through a thread,
    # which made them ~25% slower per step here.
    def episode_workflow(steps: int) -> str:
        messages = [prompt()]
        for step in range(1, steps + 1):
            reply = model(Ask(step, steps))
            messages.append(reply)
            for call in reply.get("tool_calls", []):
                messages.append(tool_message(call, tool(call)))
        return messages[-1]["content"]

    episode_run = DBOS.workflow(name="episode")(episode_workflow)
    DBOS(
        config={
            "name": "loopline-peers",
            "system_database_url": f"sqlite:///{database}",
            "log_level": "WARNING",
        }
    )
    bench.stack.callback(DBOS.destroy, destroy_registry=True)
    DBOS.launch()

    def episode_seconds(steps: int) -> float:
        started = time.perf_counter()
        return timed_answer(started, episode_run(steps))

    async def run(steps: int) -> Sample:
        return await in_thread(episode_seconds, steps, database)

    return run


async def open_temporal(bench: Bench, local: bool) -> Runner:
    client = await bench.temporal()
    queue = "bare-local" if local else "bare-activity"
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[BareEpisode],
        activities=[model_activity, tool_activity],
    )
    await bench.stack.enter_async_context(worker)

    async def run(steps: int) -> Sample:
        workflow_id = f"{queue}-{uuid.uuid4().hex}"
        started = time.perf_counter()
        answer = await client.execute_workflow(
            BareEpisode.run, BareInput(steps, local), id=workflow_id, task_queue=queue
        )
        seconds = timed_answer(started, answer)
        return Sample(seconds, history_bytes=await history_bytes(client, workflow_id))

    return run


async def open_loopline(
    bench: Bench, url: str, database_bytes: Callable[[], int], queue: str
) -> Runner:
    client = await bench.temporal()
    stores = await bench.stack.enter_async_context(open_stores(url))
    await bench.stack.enter_async_context(loopline_worker(client, stores, bench.registry, queue))

    async def run(steps: int) -> Sample:
        before = database_bytes()
        seconds, workflow_id = await loopline_run(client, stores.runs, episode(steps), queue)
        written = database_bytes() - before
        return Sample(seconds, await history_bytes(client, workflow_id), written)

    return run


async def open_loopline_sqlite(bench: Bench) -> Runner:
    database = bench.folder / "loopline.db"
    return await open_loopline(
        bench, f"sqlite:///{database}", lambda: sqlite_used_bytes(database), "loopline-sqlite"
    )


@contextmanager
def postgres_database() -> Iterator[str]:
    """A scratch database of the tests' PostgreSQL server, dropped afterwards."""
    try:
        with scratch_postgres_database() as url:
            yield url
    except pytest.skip.Exception as skipped:
        raise Unavailable(skipped.msg) from None


async def open_loopline_postgres(bench: Bench) -> Runner:
    url = bench.stack.enter_context(postgres_database())
    engine = create_engine(url)
    bench.stack.callback(engine.dispose)
    return await open_loopline(bench, url, lambda: postgres_bytes(engine), "loopline-postgres")


async def open_temporal_local(bench: Bench) -> Runner:
    return await open_temporal(bench, local=True)


async def open_temporal_activity(bench: Bench) -> Runner:
    return await open_temporal(bench, local=False)


SYSTEMS: dict[str, Callable[[Bench], Awaitable[Runner]]] = {
    "plain": open_plain,
    "langgraph": open_langgraph,
    "dbos": open_dbos,
    "temporal-local": open_temporal_local,
    "temporal-activity": open_temporal_activity,
    REFERENCE: open_loopline_sqlite,
    "loopline-postgres": open_loopline_postgres,
}


async def open_systems(bench: Bench, names: list[str]) -> dict[str, Runner]:
    runners = {}
    for name in names:
        try:
            runners[name] = await SYSTEMS[name](bench)
        except Unavailable as reason:
            print(f"{name}: left out, {reason}")
        except ModuleNotFoundError as missing:
            print(f"{name}: left out, no {missing.name} here (pip install -e '.[bench]')")
    return runners


async def measure(runners: dict[str, Runner], steps: int, repeats: int) -> dict[str, list[Sample]]:
    for run in runners.values():
        await run(WARM_UP_STEPS)
    samples: dict[str, list[Sample]] = {name: [] for name in runners}
    names = list(runners)
    for repeat in range(repeats):
        first = repeat % len(names)
        for name in names[first:] + names[:first]:
            # One system's garbage is not collected in another's time.
            gc.collect()
            samples[name].append(await runners[name](steps))
    return samples


@dataclass(frozen=True)
class Row:
    ms_per_step: float
    history_per_step: float | None
    database_per_step: float | None


def per_step(values: list[int | None], steps: int) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) / steps if known else None


def summarise(samples: list[Sample], steps: int) -> Row:
    return Row(
        ms_per_step=statistics.median(sample.seconds for sample in samples) / steps * 1000,
        history_per_step=per_step([sample.history_bytes for sample in samples], steps),
        database_per_step=per_step([sample.database_bytes for sample in samples], steps),
    )


HEADINGS = (
    "system",
    "ms per step",
    f"÷ {REFERENCE}",
    f"{REFERENCE} ÷ it",
    f"{REFERENCE} adds, ms",
    "history B/step",
    "DB B/step",
)


def _ratio(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _cells(row: Row, reference: Row | None) -> list[str]:
    own = row.ms_per_step
    versus = ["-", "-", "-"]
    if reference is not None:
        theirs = reference.ms_per_step
        versus = [_ratio(own / theirs), _ratio(theirs / own), f"{theirs - own:+.2f}"]
    sizes = [
        "-" if size is None else f"{size:,.0f}"
        for size in (row.history_per_step, row.database_per_step)
    ]
    return [f"{own:.3f}", *versus, *sizes]


def table(rows: dict[str, Row]) -> list[str]:
    """A Markdown table, padded so it also reads as plain text."""
    lines = [[name, *_cells(row, rows.get(REFERENCE))] for name, row in rows.items()]
    widths = [
        max(len(cells[i]) for cells in [list(HEADINGS), *lines]) for i in range(len(HEADINGS))
    ]

    def format_line(cells: list[str]) -> str:
        padded = [cells[0].ljust(widths[0])]
        padded += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return [format_line(list(HEADINGS)), rule, *map(format_line, lines)]


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def report(
    samples: dict[str, list[Sample]],
    steps: int,
    load_before: tuple[float, float, float],
) -> None:
    rows = {name: summarise(runs, steps) for name, runs in samples.items()}
    repeats = min(len(runs) for runs in samples.values())
    print(f"{steps}-step episode, medians of {repeats} interleaved repeats")
    print("\n".join(table(rows)))
    print(
        f"load average (1, 5, 15 min) before: {_load(load_before)}, after: {_load(os.getloadavg())}"
    )


async def main(steps: int, repeats: int, names: list[str]) -> None:
    load_before = os.getloadavg()
    # A SIGTERM unwinds the stack as Ctrl-C does, so no server or worker is left behind.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bench = Bench(stack, folder, Registry.from_modules(DEFAULT_ENVIRONMENT_MODULES))
        runners = await open_systems(bench, names)
        samples = await measure(runners, steps, repeats)
    report(samples, steps, load_before)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    known = ", ".join(SYSTEMS)
    parser.add_argument(
        "--only", default=",".join(SYSTEMS), help=f"a comma-separated subset: {known}"
    )
    args = parser.parse_args(argv)
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = sorted(chosen - set(SYSTEMS))
    args.only = [name for name in SYSTEMS if name in chosen]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}; known: {known}")
    if args.steps < 2 or args.repeats < 1:
        parser.error("--steps must be at least 2 (a tool step, then the answer), --repeats 1")
    return args


if __name__ == "__main__":
    args = _parse(sys.argv[1:])
    exit_code = 0
    try:
        asyncio.run(main(args.steps, args.repeats, args.only))
    except (KeyboardInterrupt, asyncio.CancelledError):
        exit_code = 130
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(exit_code)
