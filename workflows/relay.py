"""Relay one message to its project's webhook, retried a bounded number of times."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.calls import execute
    from workflows.contract import policies, stubs
    from workflows.contract.names import RELAY_WORKFLOW
    from workflows.contract.payloads import RelayMessage


@workflow.defn(name=RELAY_WORKFLOW)
class RelayWorkflow:
    @workflow.run
    async def run(self, message: RelayMessage) -> int:
        return await execute(
            stubs.RELAY_MESSAGE, message, policies.RELAY, f"relay to {message.project}"
        )
