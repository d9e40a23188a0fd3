"""Provider failures as Temporal errors: which ones a retry can mend, and when to retry.

The SDK clients never retry (`max_retries=0`): Temporal does, with backoff, and waits at
least as long as a `retry-after` header asks.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, cast

from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:
    import openai

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = timedelta(minutes=10)
REDACTED = "[redacted]"
BODY_EXCERPT_CHARS = 500
# What a server's refusal of the request's shape says, whatever status it answers with
# (llama.cpp's server answers its pydantic validation errors with a 500).
VALIDATION_ERROR = re.compile(
    r"validation error|validationerror|field required|input should be|extra inputs are not "
    r"permitted|invalid request|unprocessable",
    re.IGNORECASE,
)

# The SDKs' own exception packages: an error raised by a provider client was raised after
# its SDK was imported, so looking it up never imports one.
SDKS = ("openai", "anthropic")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def as_application_error(
    error: Exception, provider: str, secrets: Iterable[str]
) -> ApplicationError | None:
    """The Temporal error for a provider SDK failure; None if `error` is not one."""
    if isinstance(error, _sdk_errors("APIStatusError")):
        answered = cast("openai.APIStatusError", error)  # anthropic's has the same fields
        status = answered.status_code
        text = f"{provider} answered HTTP {status}: {answered.message}"
        body = body_excerpt(answered)
        if body and body not in answered.message:
            text += f" (body: {body})"
        message = redact(text, secrets)
        retryable = status in RETRYABLE_STATUSES or status >= 500
        return ApplicationError(
            message,
            type=f"ProviderHTTP{status}",
            non_retryable=not retryable,
            next_retry_delay=retry_after(answered.response.headers) if retryable else None,
        )
    # Timeouts are connection errors too (APITimeoutError subclasses APIConnectionError).
    if isinstance(error, _sdk_errors("APIConnectionError")):
        kind = "timed out" if "Timeout" in type(error).__name__ else "could not be reached"
        message = redact(f"{provider} {kind}: {error}", secrets)
        return ApplicationError(message, type="ProviderUnreachable")
    return None


def body_excerpt(error: openai.APIStatusError) -> str:
    """The start of the answer's body, on one line; empty if it was streamed unread."""
    try:
        text = error.response.text
    except Exception:  # a streamed answer whose body was never read
        return ""
    flat = " ".join(text.split())
    if len(flat) > BODY_EXCERPT_CHARS:
        return flat[:BODY_EXCERPT_CHARS] + "…"
    return flat


def refuses_the_request(error: Exception) -> str | None:
    """The body of a 5xx that reads as a validation error of the request, or None: such an
    answer, given twice, will not change on a retry."""
    if not isinstance(error, _sdk_errors("APIStatusError")):
        return None
    answered = cast("openai.APIStatusError", error)
    body = body_excerpt(answered) or answered.message
    if answered.status_code >= 500 and VALIDATION_ERROR.search(body):
        return f"{answered.status_code} {body}"
    return None


def describe(error: BaseException) -> str:
    """An exception as `Type: message`, never an empty message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else f"{type(error).__name__} (no message)"


def retry_after(headers: Mapping[str, str]) -> timedelta | None:
    """How long the provider asked us to wait: `retry-after-ms`, `retry-after` in seconds
    or as an HTTP date."""
    delay: timedelta | None = None
    if (milliseconds := headers.get("retry-after-ms")) is not None:
        delay = _parse_number(milliseconds, scale=0.001)
    elif (value := headers.get("retry-after")) is not None:
        delay = _parse_number(value, scale=1.0) or _parse_date(value)
    if delay is None or delay <= timedelta(0):
        return None
    return min(delay, MAX_RETRY_AFTER)


def _parse_number(value: str, *, scale: float) -> timedelta | None:
    try:
        return timedelta(seconds=float(value) * scale)
    except ValueError:
        return None


def _parse_date(value: str) -> timedelta | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment - datetime.now(UTC)


def _sdk_errors(name: str) -> tuple[type[Exception], ...]:
    """The exception class `name` of every provider SDK this process has loaded."""
    loaded = (sys.modules.get(sdk) for sdk in SDKS)
    return tuple(getattr(module, name) for module in loaded if module is not None)
