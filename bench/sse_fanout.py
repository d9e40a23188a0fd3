"""Fan-out figures of the native SSE event stream, from real API and worker processes.

1. one run: N clients follow ONE live session; M messages are posted to it one after the
   other, each once every client has seen the previous turn end (the run back to `idle`).
2. many runs: N clients, each following its own live session; one message is posted to
   each run, at a fixed rate (open loop).

For every event a client receives: the latency from the start of the POST that caused it
to the receipt, and its share after the event was recorded (its created_at, the worker's
clock) to the receipt, which is the API's part. Beside them: the latency of the POSTs, the
CPU seconds of the API (and of the worker and this process, which share the cores) during
the measured window, and the API's open file descriptors at peak. The API runs with the
production keep-alive interval (15 s), not the tests' 1 s. The goals: event p99 < 1 s and
POST p99 < 100 ms. The bench's clients, the API, the worker and the Temporal dev server
share the machine's cores, so each latency includes the clients' own turn to read it.

From the repository root, in its virtualenv:

  python -m bench.sse_fanout                 # 1,000 clients on 1 run, 1,000 on 1,000 runs
  python -m bench.sse_fanout --quick         # 50 and 50, 5 messages: a smoke run
  python -m bench.sse_fanout [--clients 1000] [--runs 1000] [--messages 20] [--rate 10]
                             [--only one|many]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from tests.harness import Stack, dev_server, session_body, sse_events, start_runs
from workers.cli.up import DEV_SERVER_TUNING

GOAL_EVENT_P99_MS = 1000.0
GOAL_POST_P99_MS = 100.0
# Bounds, so that a stuck stack fails the bench instead of hanging it.
READY_BASE_SECONDS = 120.0
READY_SECONDS_PER_RUN = 0.6
TURN_SECONDS = 120.0
SAMPLE_SECONDS = 0.25
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> None:
    """Soft limit up to the hard one; the API and worker inherit it from this process."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Probe:
    """CPU, open fds and RSS of one process, read from /proc (psutil is not installed)."""

    pid: int
    peak_fds: int = 0
    peak_rss_mib: float = 0.0

    def cpu_seconds(self) -> float:
        # Fields after the command name, which may hold spaces: utime and stime are 14, 15.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def sample(self) -> None:
        with contextlib.suppress(OSError):
            self.peak_fds = max(self.peak_fds, len(os.listdir(f"/proc/{self.pid}/fd")))
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_rss_mib = max(self.peak_rss_mib, int(line.split()[1]) / 1024)

    def children(self) -> list[int]:
        pids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in (task / "children").read_text().split()]
        return pids

    def nofile_limit(self) -> str:
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
        return "?"


async def sample_forever(probes: list[Probe]) -> None:
    while True:
        for probe in probes:
            probe.sample()
        await asyncio.sleep(SAMPLE_SECONDS)


@dataclass
class Window:
    """CPU seconds each probe spent between start() and stop(), and the wall time."""

    probes: dict[str, Probe]
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def start(self) -> None:
        self.wall = time.monotonic()
        self.cpu = {name: probe.cpu_seconds() for name, probe in self.probes.items()}

    def stop(self) -> None:
        self.wall = time.monotonic() - self.wall
        self.cpu = {name: p.cpu_seconds() - self.cpu[name] for name, p in self.probes.items()}


# --- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    seq: int
    received: float
    recorded: float


@dataclass
class Subscriber:
    """One SSE client of one run; it notes when each event arrived and when the run idles."""

    run_id: str
    receipts: list[Receipt] = field(default_factory=list)
    idle_seq: int = 0
    failure: BaseException | None = None
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, http: httpx.AsyncClient) -> None:
        try:
            async for event in sse_events(http, f"/v1/runs/{self.run_id}/events"):
                if event.event == "end":
                    raise RuntimeError(f"run {self.run_id} ended during the bench")
                if event.id is not None:
                    self._note(int(event.id), event.event, event.data)
            raise RuntimeError(f"the stream of run {self.run_id} closed")
        except Exception as error:
            self.failure = error
            self._idle.set()  # wake a waiter, which then raises the failure

    def _note(self, seq: int, kind: str, data: str) -> None:
        received = time.time()
        view = json.loads(data)
        recorded = datetime.fromisoformat(view["created_at"]).timestamp()
        self.receipts.append(Receipt(seq, received, recorded))
        if kind == "status" and view["data"]["status"] == "idle":
            self.idle_seq = seq
            self._idle.set()

    async def idle_after(self, seq: int) -> int:
        """The seq of the run's first `idle` status after `seq`, once it has arrived."""
        while self.idle_seq <= seq:
            if self.failure is not None:
                raise RuntimeError(f"client of {self.run_id} failed") from self.failure
            self._idle.clear()
            await self._idle.wait()
        return self.idle_seq


def stream_client(stack: Stack) -> httpx.AsyncClient:
    # No pool limit: every subscriber holds a connection for the whole scenario. The read
    # timeout outlasts the 15 s keep-alive interval, so only a dead stream trips it.
    return httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.api_key}"},
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        timeout=httpx.Timeout(60.0),
    )


async def all_idle(subscribers: list[Subscriber], seq: int, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        await asyncio.gather(*(s.idle_after(seq) for s in subscribers))


@contextlib.asynccontextmanager
async def subscribed(
    stack: Stack, subscribers: list[Subscriber], ready_seconds: float
) -> AsyncIterator[None]:
    """Every subscriber connected and its run idle (its first turn over); disconnected after."""
    async with stream_client(stack) as http:
        tasks = [asyncio.create_task(s.follow(http)) for s in subscribers]
        try:
            await all_idle(subscribers, 0, ready_seconds)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# --- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """Events of `run_id` after `after` up to `last` came from the message sent at `sent`."""

    run_id: str
    sent: float
    took: float
    after: int
    last: int


async def turn(
    http: httpx.AsyncClient, subscribers: list[Subscriber], run_id: str, number: int
) -> Turn:
    after = subscribers[0].idle_seq
    sent = time.time()
    response = await http.post(
        f"/v1/runs/{run_id}/messages", json={"message_id": f"m{number}", "content": f"#{number}"}
    )
    took = time.time() - sent
    response.raise_for_status()
    await all_idle(subscribers, after, TURN_SECONDS)
    return Turn(run_id, sent, took, after, subscribers[0].idle_seq)


# --- figures -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def spread(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):7.1f} ms  p99 {percentile(values, 99):7.1f} ms  "
        f"max {max(values):7.1f} ms"
    )


def verdict(value: float, goal: float) -> str:
    return f"goal p99 < {goal:g} ms: {'met' if value < goal else 'MISSED'}"


@dataclass
class Scenario:
    title: str
    window: Window
    api: Probe
    turns: list[Turn] = field(default_factory=list)
    caused: list[float] = field(default_factory=list)
    worked: list[float] = field(default_factory=list)
    delivered: list[float] = field(default_factory=list)
    events: int = 0
    expected: int = 0
    answered_after_turn: int = 0

    def attribute(self, subscribers: list[Subscriber]) -> None:
        """Each receipt's latency from the POST of the turn its event belongs to."""
        by_run: dict[str, list[Turn]] = {}
        for t in self.turns:
            by_run.setdefault(t.run_id, []).append(t)
        self.events = sum(t.last - t.after for t in self.turns)
        self.expected = sum(t.last - t.after for s in subscribers for t in by_run.get(s.run_id, []))
        for subscriber in subscribers:
            for receipt in subscriber.receipts:
                for t in by_run.get(subscriber.run_id, []):
                    if t.after < receipt.seq <= t.last:
                        self.caused.append((receipt.received - t.sent) * 1000)
                        self.worked.append((receipt.recorded - t.sent) * 1000)
                        self.delivered.append((receipt.received - receipt.recorded) * 1000)
        # Whether the POST is answered only once the whole turn is recorded: the update's
        # answer rides on the workflow task that also runs the turn's local activities.
        ends = {(s.run_id, r.seq): r.recorded for s in subscribers for r in s.receipts}
        self.answered_after_turn = sum(
            t.sent + t.took >= ends[(t.run_id, t.last)] for t in self.turns
        )

    def lines(self) -> Iterator[str]:
        posts = [t.took * 1000 for t in self.turns]
        cpu, wall = self.window.cpu, self.window.wall
        yield self.title
        yield (
            f"  event, POST -> received      {spread(self.caused)}   "
            f"{verdict(percentile(self.caused, 99), GOAL_EVENT_P99_MS)}"
        )
        yield f"    POST -> recorded (worker)  {spread(self.worked)}"
        yield f"    recorded -> received (API) {spread(self.delivered)}"
        missing = self.expected - len(self.caused)
        yield (
            f"    ({len(self.caused):,} receipts of {self.events:,} events, {missing:,} missing)"
        )
        yield (
            f"  POST /messages               {spread(posts)}   "
            f"{verdict(percentile(posts, 99), GOAL_POST_P99_MS)}  ({len(posts):,} posts)"
        )
        yield (
            f"    answered after the turn's last event was recorded: "
            f"{self.answered_after_turn} of {len(self.turns)}"
        )
        yield (
            f"  CPU s in the {wall:.1f} s window: API {cpu['api']:.1f} "
            f"({cpu['api'] / wall:.0%} of a core), worker {cpu['worker']:.1f}, "
            f"Temporal {cpu['temporal']:.1f}, bench clients {cpu['bench']:.1f}"
        )
        yield (
            f"  API at peak: {self.api.peak_fds:,} open fds, {self.api.peak_rss_mib:.0f} MiB RSS"
        )


# --- scenarios ---------------------------------------------------------------------------------


async def one_run(stack: Stack, http: httpx.AsyncClient, window: Window, args: Args) -> Scenario:
    (run_id,) = await start_runs(http, session_body(), 1)
    subscribers = [Subscriber(run_id) for _ in range(args.clients)]
    scenario = Scenario(
        f"one run: {args.clients:,} clients on 1 run, {args.messages} messages one after another",
        window,
        window.probes["api"],
    )
    async with subscribed(stack, subscribers, READY_BASE_SECONDS):
        window.start()
        for number in range(args.messages):
            scenario.turns.append(await turn(http, subscribers, run_id, number))
        window.stop()
    scenario.attribute(subscribers)
    return scenario


async def many_runs(stack: Stack, http: httpx.AsyncClient, window: Window, args: Args) -> Scenario:
    run_ids = await start_runs(http, session_body(), args.runs)
    subscribers = [Subscriber(run_id) for run_id in run_ids]
    scenario = Scenario(
        f"many runs: {args.runs:,} clients on {args.runs:,} runs, one message to each, "
        f"{args.rate:g} per second",
        window,
        window.probes["api"],
    )

    # Open loop at a fixed rate: a slow answer must not slow the posts down, or the
    # latencies would hide the queueing they cause.
    async def post(subscriber: Subscriber, delay: float) -> None:
        await asyncio.sleep(delay)
        scenario.turns.append(await turn(http, [subscriber], subscriber.run_id, 0))

    ready = READY_BASE_SECONDS + READY_SECONDS_PER_RUN * args.runs
    async with subscribed(stack, subscribers, ready):
        window.start()
        await asyncio.gather(*(post(s, n / args.rate) for n, s in enumerate(subscribers)))
        window.stop()
    scenario.attribute(subscribers)
    return scenario


# --- main --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Args:
    clients: int
    runs: int
    messages: int
    rate: float


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} cores)"


async def on_stack(
    scenarios: Sequence[Callable[[Stack, httpx.AsyncClient, Window, Args], Awaitable[Scenario]]],
    args: Args,
) -> None:
    server = await dev_server(dev_server_extra_args=DEV_SERVER_TUNING, dev_server_log_level="error")
    try:
        with tempfile.TemporaryDirectory() as workdir:
            stack = Stack(
                temporal_address=server.client.service_client.config.target_host,
                workdir=Path(workdir),
                extra_env={"LOOPLINE_SSE_KEEPALIVE_SECONDS": "15"},
            )
            stack.start_worker()
            try:
                await stack.start_api()
                await run_scenarios(stack, scenarios, args)
            finally:
                stack.stop()
    finally:
        await server.shutdown()


async def run_scenarios(
    stack: Stack,
    scenarios: Sequence[Callable[[Stack, httpx.AsyncClient, Window, Args], Awaitable[Scenario]]],
    args: Args,
) -> None:
    assert stack.api is not None
    bench = Probe(os.getpid())
    ours = {stack.api.pid, *(worker.pid for worker in stack.workers)}
    (temporal,) = (pid for pid in bench.children() if pid not in ours)
    probes = {
        "api": Probe(stack.api.pid),
        "worker": Probe(stack.workers[0].pid),
        "temporal": Probe(temporal),
        "bench": bench,
    }
    print(
        f"open files limit (soft/hard): bench {bench.nofile_limit()}, "
        f"API {probes['api'].nofile_limit()}",
        flush=True,
    )
    async with stack.client(timeout=60) as http:
        for scenario in scenarios:
            probes["api"].peak_fds, probes["api"].peak_rss_mib = 0, 0.0
            sampler = asyncio.create_task(sample_forever(list(probes.values())))
            try:
                result = await scenario(stack, http, Window(probes), args)
            finally:
                sampler.cancel()
            for line in result.lines():
                print(line, flush=True)
            print(f"  load average after: {load()}", flush=True)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="clients of the one run")
    parser.add_argument("--runs", type=int, default=1000, help="runs (one client each)")
    parser.add_argument("--messages", type=int, default=20, help="messages to the one run")
    parser.add_argument("--rate", type=float, default=10, help="many runs: posts per second")
    parser.add_argument("--quick", action="store_true", help="50 clients, 50 runs, 5 messages")
    parser.add_argument("--only", choices=["one", "many"], help="run one scenario alone")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    options = _parse(argv)
    args = Args(options.clients, options.runs, options.messages, options.rate)
    if options.quick:
        args = Args(50, 50, 5, options.rate)
    chosen = {"one": [one_run], "many": [many_runs], None: [one_run, many_runs]}[options.only]
    raise_nofile()
    print(f"load average before: {load()}", flush=True)
    asyncio.run(on_stack(chosen, args))


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
