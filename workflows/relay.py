"""Relay one message to its project's webhook, retried a bounded number of times."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.relay import RelayActivities
    from loopline.models import RelayMessage

RELAY_ATTEMPTS = 5


@workflow.defn
class RelayWorkflow:
    @workflow.run
    async def run(self, message: RelayMessage) -> int:
        return await workflow.execute_activity_method(
            RelayActivities.relay_message,
            message,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_attempts=RELAY_ATTEMPTS,
            ),
        )
