"""How each kind of activity is timed and retried. Every policy has a bounded number of
attempts: a fault that no retry mends fails the run with its error instead of leaving it
running forever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

from loopline.models import RemoteCallPolicy


@dataclass(frozen=True)
class ActivityPolicy:
    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    # Local activities run in the workflow's own worker, without a round trip to the server.
    local: bool = False

    def __post_init__(self) -> None:
        # Temporal reads 0 attempts as "retry forever": a fault no retry mends would leave
        # the run running for good instead of failing it with the error.
        if self.retry.maximum_attempts < 1:
            raise ValueError("an activity policy needs a bounded number of attempts")


def _backoff(attempts: int, longest: timedelta = timedelta(seconds=30)) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=longest,
        maximum_attempts=attempts,
    )


# A local activity keeps its workflow task open; the worker extends the task at 80 % of this
# timeout. At the default 10 s, environment code that runs longer than 5 s (a CPU-heavy tool
# on a busy worker) holds tasks for 8 s, past the 5 s the SDK warns at (TMPRL1104), and a
# stalled worker's task is lost only after 10 s. At 5 s tasks are extended every 4 s.
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=5)

# Regular activities heartbeat (activities/heartbeats.py): a killed worker's activity is
# retried elsewhere after this long, not after its whole timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=15)

# Setup and evaluation of a remote environment (and of runs recorded before LOCAL_LIFECYCLE):
# regular activities, retried by the server, heartbeating while the server works. Ten attempts
# span about 4 minutes.
LIFECYCLE = ActivityPolicy(
    start_to_close=timedelta(minutes=10), retry=_backoff(10), heartbeat=HEARTBEAT_TIMEOUT
)
# Teardown records how the run ended: it is given longer (about 25 minutes) to get through a
# database outage, since a run whose teardown fails keeps its last status in the store.
TEARDOWN = ActivityPolicy(
    start_to_close=timedelta(minutes=10),
    retry=_backoff(30, longest=timedelta(minutes=1)),
    heartbeat=HEARTBEAT_TIMEOUT,
)
# An in-process environment's setup, evaluation and teardown run in the worker's own code,
# like its tools: as local activities, tried as often as the regular ones. As regular ones
# they cost a one-step run three server round trips, three heartbeats and three more
# workflow tasks: 200 such runs (python -m bench.batches) took the dev server 7.7 s of CPU,
# 3.7 s without. Each is idempotent by its event key, so one re-run after a crash (before
# its workflow task completed) records nothing twice.
LOCAL_LIFECYCLE = ActivityPolicy(
    start_to_close=LIFECYCLE.start_to_close, retry=LIFECYCLE.retry, local=True
)
LOCAL_TEARDOWN = ActivityPolicy(
    start_to_close=TEARDOWN.start_to_close, retry=TEARDOWN.retry, local=True
)
# The scripted model and in-process tools answer in milliseconds. As local activities they
# cost ~3 ms per call instead of ~31 ms for a regular activity round trip, and history
# records one marker per call. Their results are committed in the trace store under an
# idempotency key, so a call re-run after a crash returns what was recorded.
LOCAL_STEP = ActivityPolicy(start_to_close=timedelta(minutes=2), retry=_backoff(10), local=True)
# A provider call is slow and may be rate limited: a regular activity that any worker can
# pick up, heartbeating while it waits, retried with backoff (at least as long as a
# retry-after asks) a bounded number of times before the run fails with the provider's error.
MODEL_CALL = ActivityPolicy(
    start_to_close=timedelta(minutes=15),
    retry=_backoff(8, longest=timedelta(minutes=2)),
    heartbeat=HEARTBEAT_TIMEOUT,
)
# What a batch workflow reads and writes in the trace store.
BATCH_STORE = ActivityPolicy(start_to_close=timedelta(minutes=1), retry=_backoff(20), local=True)
RELAY = ActivityPolicy(start_to_close=timedelta(seconds=30), retry=_backoff(5))
# A remote call may take the environment's whole call timeout; this much more lets the
# activity report the server's timeout itself rather than be cut off by Temporal's.
REMOTE_MARGIN = timedelta(seconds=5)


def callback(retry_count: int) -> ActivityPolicy:
    """One POST to the caller's URL per attempt, `retry_count` retries after the first."""
    return ActivityPolicy(
        start_to_close=timedelta(seconds=30),
        retry=_backoff(retry_count + 1, longest=timedelta(minutes=1)),
    )


def remote_tool(remote: RemoteCallPolicy) -> ActivityPolicy:
    """A tool call on a remote environment's server, as its environment times and retries it."""
    return ActivityPolicy(
        start_to_close=timedelta(seconds=remote.timeout_seconds) + REMOTE_MARGIN,
        retry=_backoff(remote.max_attempts),
        heartbeat=HEARTBEAT_TIMEOUT,
    )


def lifecycle(remote: RemoteCallPolicy | None) -> ActivityPolicy:
    """Setup and evaluation; against a remote environment tried as often as it says, so an
    unreachable server fails the run instead of leaving it retrying."""
    if remote is None:
        return LIFECYCLE
    return ActivityPolicy(
        start_to_close=LIFECYCLE.start_to_close,
        retry=_backoff(remote.max_attempts),
        heartbeat=HEARTBEAT_TIMEOUT,
    )
