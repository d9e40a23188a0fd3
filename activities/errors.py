"""How activities report failures that retrying cannot fix."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def permanent(message: str, error_type: str) -> ApplicationError:
    """A failure that fails the run at once with `message` instead of being retried."""
    return ApplicationError(message, type=error_type, non_retryable=True)
