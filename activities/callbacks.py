"""Completion callbacks: POST a run's result to the caller's URL, signed, retried.

Temporal retries the activity (`retry_count` times, backing off); every attempt's outcome
is kept on the run, and the last one drops the sealed headers and secret. The body is
signed as Stripe-style webhooks are: `X-Loopline-Signature: t=<unix time>,v1=<hex>` where
hex is HMAC-SHA256 over "<t>.<body>", so a receiver can check origin and freshness.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from temporalio import activity

from activities.base import StoreActivities
from activities.errors import permanent
from loopline.environment.registry import Registry
from loopline.models import CallbackOutcome, CallbackSpec, DeliveryStatus, RunView
from loopline.outbound import OutboundBlocked
from loopline.redaction import scrub, secret_forms
from loopline.secrets import (
    CALLBACK_HEADERS,
    CALLBACK_SIGNING_SECRET,
    SecretBox,
    SecretsUnavailableError,
)
from loopline.store import TraceStore
from loopline.store.database import utcnow
from workflows.contract import stubs
from workflows.contract.names import callback_key
from workflows.contract.payloads import RunRef

SIGNATURE_HEADER = "X-Loopline-Signature"
DELIVERY_HEADER = "X-Loopline-Delivery"
SIGNING_PURPOSE = "callback-signing"
TIMEOUT_SECONDS = 10.0
# Answers that say "try again later"; any other 4xx means the receiver refuses the payload.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
# How much of a refusing receiver's answer the run keeps.
ANSWER_CHARS = 500


def _shown(answer: str, secrets: list[str | bytes]) -> str:
    """What a receiver answered, as the run keeps it: scrubbed whole, then cut short (a
    secret cut in half by the cut would no longer be found)."""
    values = [value.decode() if isinstance(value, bytes) else value for value in secrets]
    return scrub(answer, secret_forms(values))[:ANSWER_CHARS]


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: bytes, header: str, body: bytes) -> bool:
    """What a receiver does with the header (here for tests and for receivers in Python)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        return False
    return hmac.compare_digest(signature(secret, int(parts["t"]), body), header)


def default_signing_secret(box: SecretBox) -> str:
    """The deployment's callback secret, used like a per-callback `secret` string."""
    return box.derive(SIGNING_PURPOSE).hex()


class CallbackActivities(StoreActivities):
    def __init__(self, store: TraceStore, registry: Registry, box: SecretBox) -> None:
        super().__init__(store, registry)
        self._box = box
        self._http = httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
            transport=registry.outbound.transport(),
            trust_env=False,
        )

    @activity.defn(name=stubs.DELIVER_CALLBACK.name)
    async def deliver_callback(self, ref: RunRef) -> None:
        spec = await self.spec(ref.run_id)
        if spec.callback is None:
            return
        info = activity.info()
        attempt = info.attempt
        last_attempt = spec.callback.retry_count + 1
        view = await self.store.get_run(ref.run_id)
        if view.callback is not None and view.callback.status is DeliveryStatus.delivered:
            return
        headers, key = await self._sealed(ref.run_id)
        body = json.dumps(await self._payload(view, spec.callback), default=str).encode()
        outcome = await self._post(spec.callback.url, body, headers, key, ref.run_id, attempt)
        retryable = outcome.status is DeliveryStatus.retrying
        if retryable and attempt >= last_attempt:
            outcome.status = DeliveryStatus.failed
        final = outcome.status is not DeliveryStatus.retrying
        await self.store.record_callback(ref.run_id, callback_key(attempt), outcome, final=final)
        if outcome.status is DeliveryStatus.delivered:
            return
        message = f"callback to {spec.callback.url} failed: {outcome.error}"
        if final:
            raise permanent(message, "CallbackFailed")
        raise RuntimeError(message)

    async def _post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        key: bytes,
        run_id: str,
        attempt: int,
    ) -> CallbackOutcome:
        sent = {
            **headers,
            "Content-Type": "application/json",
            DELIVERY_HEADER: run_id,
            SIGNATURE_HEADER: signature(key, int(time.time()), body),
        }
        try:
            response = await self._http.post(url, content=body, headers=sent)
        except OutboundBlocked as error:
            return CallbackOutcome(status=DeliveryStatus.failed, attempts=attempt, error=str(error))
        except httpx.HTTPError as error:
            return CallbackOutcome(
                status=DeliveryStatus.retrying,
                attempts=attempt,
                error=f"{type(error).__name__}: {error}",
            )
        if response.is_success:
            return CallbackOutcome(
                status=DeliveryStatus.delivered,
                attempts=attempt,
                status_code=response.status_code,
                delivered_at=utcnow(),
            )
        retry = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
        return CallbackOutcome(
            status=DeliveryStatus.retrying if retry else DeliveryStatus.failed,
            attempts=attempt,
            status_code=response.status_code,
            error=f"HTTP {response.status_code}: {_shown(response.text, [*headers.values(), key])}",
        )

    async def _sealed(self, run_id: str) -> tuple[dict[str, str], bytes]:
        sealed = await self.store.sealed_callback(run_id)
        try:
            opened = self._box.open(sealed) if sealed else {}
        except SecretsUnavailableError as error:
            raise permanent(str(error), "SecretsUnavailable") from error
        headers = json.loads(opened.get(CALLBACK_HEADERS, "{}"))
        secret = opened.get(CALLBACK_SIGNING_SECRET)
        return headers, (secret or default_signing_secret(self._box)).encode()

    async def _payload(self, view: RunView, callback: CallbackSpec) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "run_id": view.run_id,
            "status": view.status.value,
            "stop_reason": view.stop_reason.value if view.stop_reason else None,
            "environment": view.environment,
            "scenario": view.scenario,
            "model": view.model,
            "steps": view.steps,
            "error": view.error,
            "batch_id": view.batch_id,
            "task": view.task,
            "rollout": view.rollout,
            "usage": view.usage.model_dump(mode="json"),
            "ended_at": view.ended_at.isoformat() if view.ended_at else None,
            "metadata": callback.metadata,
        }
        if callback.include_reward:
            payload["reward"] = view.reward
            payload["success"] = view.success
            payload["evaluations"] = [
                result.model_dump(mode="json") for result in view.evaluations or []
            ]
        if callback.include_response:
            payload["response"] = view.answer
        if callback.include_trajectory:
            trajectory = await self.store.events(view.run_id)
            payload["trajectory"] = [event.model_dump(mode="json") for event in trajectory]
        return payload
