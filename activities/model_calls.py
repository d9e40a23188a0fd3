"""One call of a run's model, wherever an activity needs one: the key it runs with, the
provider client, heartbeats while it waits, errors Temporal can act on, and its price."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

from temporalio import activity

from activities.base import StoreActivities
from activities.errors import permanent
from activities.heartbeats import heartbeating
from activities.providers import Ask, Completion, MissingExtraError, ModelProvider, provider_for
from activities.providers.errors import (
    as_application_error,
    describe,
    redact,
    refuses_the_request,
)
from activities.token_stream import token_stream
from loopline.environment.registry import Registry
from loopline.models import ModelConfig, Provider, Script, Usage
from loopline.outbound import OutboundPolicy, blocked_in
from loopline.pricing import PriceTable
from loopline.secrets import SecretBox, SecretsUnavailableError
from loopline.store import TraceStore

# SDK clients are kept and reused: building one (HTTP client, TLS context) cost ~25 ms per
# call here, and a kept one also keeps its connections to the provider open.
KEPT_CLIENTS = 64
# Validation errors of a call's last attempt, remembered to tell a deterministic one.
KEPT_REFUSALS = 1000


@dataclass(frozen=True)
class Priced:
    completion: Completion
    latency_ms: float


class ModelCaller:
    def __init__(
        self,
        store: TraceStore,
        secrets: SecretBox,
        prices: PriceTable,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._prices = prices
        self._outbound = outbound or OutboundPolicy()
        self._providers: OrderedDict[str, ModelProvider] = OrderedDict()
        self._refusals: OrderedDict[str, str] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    async def call(
        self,
        run_id: str,
        config: ModelConfig,
        secret_name: str,
        script: Script | None,
        ask: Ask,
        *,
        stream_step: int | None = None,
    ) -> Priced:
        """Ask the model once; raise an ApplicationError that says whether to retry.

        With `stream_step`, the text is also published live as tokens of that step.
        """
        if stream_step is None:
            return await self._call(run_id, config, secret_name, script, ask)
        async with token_stream(stream_step, ask.purpose, config) as stream:
            live = dataclasses.replace(ask, on_text=stream.push if stream else None)
            return await self._call(run_id, config, secret_name, script, live)

    async def _call(
        self, run_id: str, config: ModelConfig, secret_name: str, script: Script | None, ask: Ask
    ) -> Priced:
        api_key = await self._api_key(run_id, config, secret_name)
        try:
            provider = self._provider(config, api_key, script)
        except MissingExtraError as error:
            raise permanent(str(error), "ProviderExtraMissing") from error
        except Exception as error:  # the SDKs refuse to build a client without a key
            message = redact(f"cannot call {config.label}: {error}", [api_key or ""])
            raise permanent(message, "ProviderMisconfigured") from None
        started = time.perf_counter()
        try:
            async with heartbeating():
                completion = await provider.complete(ask)
        except Exception as error:
            if (blocked := blocked_in(error)) is not None:
                raise permanent(
                    f"calling {config.label} failed: {blocked}", "OutboundBlocked"
                ) from None
            mapped = as_application_error(error, config.label, [api_key or ""])
            if mapped is None:
                # Not the provider's answer but a fault of ours in calling it: retrying the
                # same request cannot mend it, so the run fails now and says why.
                detail = redact(describe(error), [api_key or ""])
                activity.logger.warning("calling %s failed: %s", config.label, detail)
                message = f"calling {config.label} failed: {detail}"
                raise permanent(message, "ProviderCallFailed") from None
            activity.logger.warning("model call failed: %s", mapped.message)
            if self._refused_again(refuses_the_request(error)):
                message = f"{mapped.message}; the same answer on the attempt before: the "
                raise permanent(
                    message + "server refuses the request as sent, a retry cannot mend it",
                    "ProviderRefusedRequest",
                ) from None
            raise mapped from None
        latency_ms = (time.perf_counter() - started) * 1000
        usage = self._prices.priced(config.model, completion.usage, config.provider)
        _record_call(config, ask, latency_ms, usage)
        return Priced(completion.model_copy(update={"usage": usage}), latency_ms)

    def _refused_again(self, refusal: str | None) -> bool:
        """Whether this call's previous attempt got the same validation error."""
        info = activity.info()
        key = f"{info.workflow_run_id}/{info.activity_id}"
        previous = self._refusals.pop(key, None)
        if refusal is None:
            return False
        self._refusals[key] = refusal
        if len(self._refusals) > KEPT_REFUSALS:
            self._refusals.popitem(last=False)
        return previous == refusal

    def _provider(
        self, config: ModelConfig, api_key: str | None, script: Script | None
    ) -> ModelProvider:
        if config.provider is Provider.scripted:
            return provider_for(config, api_key, script, self._outbound)
        identity = f"{config.model_dump_json()}\0{api_key or ''}"
        key = hashlib.sha256(identity.encode()).hexdigest()
        provider = self._providers.get(key)
        if provider is None:
            provider = provider_for(config, api_key, script, self._outbound)
            self._providers[key] = provider
        self._providers.move_to_end(key)
        if len(self._providers) > KEPT_CLIENTS:
            _, oldest = self._providers.popitem(last=False)
            closing = asyncio.create_task(oldest.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        return provider

    async def _api_key(self, run_id: str, config: ModelConfig, secret_name: str) -> str | None:
        if config.provider is Provider.scripted:
            return None
        sealed = await self._store.sealed_secrets(run_id)
        if sealed is None:
            return None
        try:
            return self._secrets.open(sealed).get(secret_name)
        except SecretsUnavailableError as error:
            raise permanent(str(error), "SecretsUnavailable") from error


def _record_call(config: ModelConfig, ask: Ask, latency_ms: float, usage: Usage) -> None:
    """Prometheus figures of one answered call, through the worker's Temporal runtime."""
    meter = activity.metric_meter().with_additional_attributes(
        {"provider": config.provider.value, "model": config.model, "purpose": ask.purpose.value}
    )
    meter.create_histogram_float(
        "loopline_model_call_seconds", "Latency of answered model calls", "s"
    ).record(latency_ms / 1000)
    tokens = meter.create_counter("loopline_model_tokens", "Tokens of model calls")
    tokens.add(usage.prompt_tokens, {"kind": "prompt"})
    tokens.add(usage.completion_tokens, {"kind": "completion"})
    meter.create_histogram_float(
        "loopline_model_call_cost_usd", "Cost of each model call; its _sum is the spend", "USD"
    ).record(usage.cost_usd)


class ModelCallingActivities(StoreActivities):
    """Activities that ask a model: the trace store, the environments and the model caller."""

    def __init__(self, store: TraceStore, registry: Registry, caller: ModelCaller) -> None:
        super().__init__(store, registry)
        self.caller = caller
