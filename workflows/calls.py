"""How the workflows call activities: through the contract's stubs and named policies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from workflows.contract import ActivityPolicy, ActivityStub

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")


async def execute(
    stub: ActivityStub[InputT, OutputT],
    arg: InputT,
    policy: ActivityPolicy,
    summary: str,
    *,
    task_queue: str | None = None,
) -> OutputT:
    """Run the activity under `policy`; one cut short by a cancellation re-raises it."""
    if policy.local:
        started = workflow.execute_local_activity(
            stub.name,
            arg,
            result_type=stub.result_type,
            start_to_close_timeout=policy.start_to_close,
            retry_policy=policy.retry,
            summary=summary,
        )
    else:
        started = workflow.execute_activity(
            stub.name,
            arg,
            result_type=stub.result_type,
            task_queue=task_queue,
            start_to_close_timeout=policy.start_to_close,
            heartbeat_timeout=policy.heartbeat,
            retry_policy=policy.retry,
            summary=summary,
        )
    return await cancellable(started)


async def cancellable(activity: Awaitable[OutputT]) -> OutputT:
    """Await an activity; one cut short by a cancellation re-raises that cancellation.

    The SDK reports an activity cancelled under us (cancel signal, deadline, a cancel sent
    through Temporal) as an ActivityError; it is the caller's cancellation, not a failure.
    """
    try:
        return await activity
    except ActivityError as error:
        if isinstance(error.cause, CancelledError):
            raise asyncio.CancelledError(str(error)) from error
        raise


def describe(error: ActivityError | ApplicationError) -> str:
    """What went wrong in an activity, as the run's error says it; a local activity's
    failure comes as the ApplicationError itself, a regular one's as the ActivityError
    around it."""
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)
