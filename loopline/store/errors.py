"""What the trace store reports when a record is not there."""

from __future__ import annotations


class RunNotFoundError(LookupError):
    pass


class TasksetNotFoundError(LookupError):
    pass


class BatchNotFoundError(LookupError):
    pass


class AgentNotFoundError(LookupError):
    pass


class UnknownKeyError(LookupError):
    pass


class StateConflictError(RuntimeError):
    """A run's state was written by another call between this call's read and its write."""
