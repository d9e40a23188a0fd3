"""Every activity runs knowing its run's secrets, and no error leaves it with one of them:
what a provider, a tool server or a callback receiver echoed back is scrubbed before it
becomes the failure that Temporal keeps in history and the worker logs."""

from __future__ import annotations

import json
from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from loopline.redaction import HeldSecrets, scrub
from loopline.secrets import CALLBACK_HEADERS, SecretBox, SecretsUnavailableError
from loopline.store import TraceStore


class RunSecrets:
    """Loads the secret values of a run once per process, into the held secrets."""

    def __init__(self, store: TraceStore, box: SecretBox, held: HeldSecrets) -> None:
        self._store = store
        self._box = box
        self.held = held

    async def hold(self, run_id: str) -> None:
        if self.held.knows(run_id):
            return
        values: list[str] = []
        for sealed in (
            await self._store.sealed_secrets(run_id),
            await self._store.sealed_callback(run_id),
        ):
            values.extend(self._opened(sealed))
        self.held.hold(run_id, values)

    def _opened(self, sealed: str | None) -> list[str]:
        if sealed is None:
            return []
        try:
            opened = self._box.open(sealed)
        except SecretsUnavailableError:
            return []  # the activity that needs them says so
        values = [value for name, value in opened.items() if name != CALLBACK_HEADERS]
        headers = json.loads(opened.get(CALLBACK_HEADERS, "{}"))
        return [*values, *(str(value) for value in headers.values())]


class ScrubbingInterceptor(Interceptor):
    def __init__(self, secrets: RunSecrets) -> None:
        self._secrets = secrets

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Scrubbing(next, self._secrets)


class _Scrubbing(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, secrets: RunSecrets) -> None:
        super().__init__(next)
        self._secrets = secrets

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        run_id = next((getattr(arg, "run_id", None) for arg in input.args), None)
        if isinstance(run_id, str):
            await self._secrets.hold(run_id)
        try:
            return await super().execute_activity(input)
        except Exception as error:
            sdk_signal = type(error).__module__.startswith("temporalio.")
            if sdk_signal and not isinstance(error, ApplicationError):
                raise  # the SDK's own signals (async completion, cancellation) pass as they are
            held = self._secrets.held.of(run_id if isinstance(run_id, str) else None)
            raise scrubbed(error, held) from None


def scrubbed(error: Exception, secrets: frozenset[str]) -> Exception:
    """The error as it may be kept: its message (and its causes') without the secrets."""
    if isinstance(error, ApplicationError):
        cleaned = ApplicationError(
            scrub(error.message, secrets),
            *(scrub(str(detail), secrets) for detail in error.details),
            type=error.type,
            non_retryable=error.non_retryable,
            next_retry_delay=error.next_retry_delay,
            category=error.category,
        )
        if error.__cause__ is not None:
            cleaned.__cause__ = ApplicationError(scrub(str(error.__cause__), secrets))
        return cleaned
    return ApplicationError(scrub(f"{error}", secrets), type=type(error).__name__)
