"""Relay messages: POST a run's message to its project's relay webhook (a Slack bridge, a
chat bot). The webhook URLs live in the workers' settings, never in workflow history."""

from __future__ import annotations

import httpx
from temporalio import activity

from activities.errors import permanent
from loopline.outbound import OutboundBlocked, OutboundPolicy
from workflows.contract import stubs
from workflows.contract.payloads import RelayMessage

TIMEOUT_SECONDS = 10.0
RETRYABLE_STATUSES = frozenset({408, 425, 429})


class RelayActivities:
    def __init__(self, webhooks: dict[str, str], outbound: OutboundPolicy) -> None:
        self._webhooks = webhooks
        self._outbound = outbound

    @activity.defn(name=stubs.RELAY_MESSAGE.name)
    async def relay_message(self, message: RelayMessage) -> int:
        """Deliver the message; returns the webhook's HTTP status. A refusal (4xx) is final."""
        url = self._webhooks.get(message.project)
        if url is None:
            raise permanent(
                f"project {message.project!r} has no relay webhook in LOOPLINE_RELAY_WEBHOOKS",
                "NoRelayWebhook",
            )
        transport = self._outbound.transport()
        async with httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, transport=transport, trust_env=False
        ) as http:
            try:
                answer = await http.post(
                    url,
                    json=message.model_dump(mode="json"),
                    headers={"Idempotency-Key": message.message_id},
                )
            except OutboundBlocked as error:
                raise permanent(
                    f"the relay webhook of {message.project!r}: {error}", "OutboundBlocked"
                ) from None
        refused = 400 <= answer.status_code < 500 and answer.status_code not in RETRYABLE_STATUSES
        if refused:
            raise permanent(
                f"the relay webhook refused the message: HTTP {answer.status_code}",
                "RelayRefused",
            )
        answer.raise_for_status()
        return answer.status_code
