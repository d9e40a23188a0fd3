"""How activities report failures: those retrying cannot fix, and those of remote servers."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from loopline.environment.toolservers import ToolServerError


def permanent(message: str, error_type: str) -> ApplicationError:
    """A failure that fails the run at once with `message` instead of being retried."""
    return ApplicationError(message, type=error_type, non_retryable=True)


def remote_failure(doing: str, error: Exception) -> ApplicationError:
    """A failed call to a remote environment's server: retried (up to the environment's
    max_attempts) when another try may succeed, failing the run at once otherwise."""
    message = f"{doing}: {error}"
    error_type = type(error).__name__
    if isinstance(error, ToolServerError) and error.retryable:
        return ApplicationError(message, type=error_type)
    return permanent(message, error_type)
