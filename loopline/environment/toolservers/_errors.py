"""How a call to a tool server can fail, by what the run should do about it."""

from __future__ import annotations

# The JSON-RPC error code with which a server says it does not know the call's session.
SESSION_LOST_CODE = -32040


class ToolServerError(Exception):
    """A call to a remote environment's server failed; `retryable` says whether trying the
    same call again (with the same idempotency key) may succeed."""

    retryable = False


class ServerUnreachable(ToolServerError):
    """No connection, a dropped connection, or a server error (HTTP 5xx, 429)."""

    retryable = True


class ServerTimedOut(ToolServerError):
    """The server did not answer within the call timeout."""

    retryable = True


class ServerRefused(ToolServerError):
    """The server refused the call for a reason the model cannot fix (credentials, a
    protocol error); retrying the same call would be refused again."""


class SessionLost(ToolServerError):
    """The server no longer knows the run's session (it restarted, or expired it): going on
    would apply tools to, and evaluate, some other state."""


class InvalidToolCall(ToolServerError):
    """The call itself was wrong (unknown tool, arguments the server rejects): the model
    hears why and may call again."""
