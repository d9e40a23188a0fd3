"""What the services answer when they refuse: each error says what to fix.

The HTTP layer (api/http/errors.py) turns each kind into one status. The trace store's own
not-found errors are LookupErrors and count as `NotFound`.
"""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError, LookupError):
    """No such record in the caller's project; another project's records are answered so."""


class Invalid(ServiceError):
    """A well-formed request that asks for something that cannot be; `loc` is the field."""

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = list(loc)


class Conflict(ServiceError):
    """The request contradicts what exists (a used id, a run that has ended)."""


class Unavailable(ServiceError):
    """A part Loopline depends on (Temporal) cannot be reached just now."""


class Busy(ServiceError):
    """The caller has as much work in flight as it may: it should retry later."""


class TooLarge(ServiceError):
    """The request or one of its parts is larger than the configured limit."""


class Unauthenticated(ServiceError):
    """No credential, or one that is not (or no longer) valid."""


class Forbidden(ServiceError):
    """A valid credential that does not grant this."""
