"""Stopping a long-running command: in order on the first Ctrl-C or SIGTERM, and for sure
soon after.

The first signal sets the stop event: the API closes its connections, the worker finishes
or cancels what it runs. Environment code in a thread cannot be cancelled, so a worker may
wait on it for good; a second signal, or the deadline, ends the process there. Nothing is
lost by that: the server gives a run's unfinished tasks to the next worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from loopline.telemetry import flush_traces

# Process managers wait 30 s (Kubernetes, `docker stop` waits 10 unless told) before SIGKILL.
SHUTDOWN_DEADLINE_SECONDS = 25.0
_CHILD_GRACE_SECONDS = 2.0

logger = logging.getLogger("loopline.shutdown")


def stop_on_signals(deadline: float = SHUTDOWN_DEADLINE_SECONDS) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            force_exit(f"a second {signum.name}")
        logger.info("%s: stopping (at most %g s)", signum.name, deadline)
        stop.set()
        watchdog = threading.Timer(
            deadline, force_exit, args=(f"still stopping after {deadline:g} s",)
        )
        watchdog.daemon = True
        watchdog.start()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


def force_exit(reason: str) -> None:
    logger.warning("%s: exiting now; Temporal hands work in flight to the next worker", reason)
    _stop_children()
    flush_traces()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _stop_children() -> None:
    """Stop the processes this one started (`loopline up`'s Temporal dev server)."""
    children = _child_pids()
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + _CHILD_GRACE_SECONDS
    while children and time.monotonic() < deadline:
        time.sleep(0.05)
        children = [pid for pid in children if _alive(pid)]
    for pid in children:
        _signal(pid, signal.SIGKILL)


def _child_pids() -> list[int]:
    # Linux only (the platform the servers run on); elsewhere children are left to exit.
    me = os.getpid()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the parent pid follows it.
        if int(stat.rpartition(")")[2].split()[1]) == me:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return waited == 0


def _signal(pid: int, signum: signal.Signals) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return
