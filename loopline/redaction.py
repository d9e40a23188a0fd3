"""Secrets a process holds for runs (provider keys, callback headers and signing secrets),
and their removal from every text the process writes: events and run fields in the trace
store, errors that go into Temporal history, and log lines.

A server may echo a secret back (a callback receiver that prints its request headers in a
401 answer); whatever it echoes passes through here before it is kept anywhere.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
# Shorter values are too common to scrub from text ("1", "true") and too short to be keys.
SHORTEST_SECRET = 6
RUNS_KEPT = 4096


class HeldSecrets:
    """The secret values of the runs this process works on, by run."""

    def __init__(self) -> None:
        self._by_run: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._every: frozenset[str] = frozenset()

    def knows(self, run_id: str) -> bool:
        return run_id in self._by_run

    def hold(self, run_id: str, values: Iterable[str]) -> None:
        self._by_run[run_id] = frozenset(secret_forms(values))
        self._by_run.move_to_end(run_id)
        if len(self._by_run) > RUNS_KEPT:
            self._by_run.popitem(last=False)
        self._every = frozenset().union(*self._by_run.values())

    def of(self, run_id: str | None) -> frozenset[str]:
        """The run's secrets; every run's, when the run is not known."""
        if run_id is None:
            return self._every
        return self._by_run.get(run_id, self._every)

    def scrub(self, text: str, run_id: str | None = None) -> str:
        return scrub(text, self.of(run_id))

    def scrub_value(self, value: Any, run_id: str | None = None) -> Any:
        secrets = self.of(run_id)
        return scrub_value(value, secrets) if secrets else value


def scrub(text: str, secrets: Iterable[str]) -> str:
    # Longest first: a secret that contains another is replaced whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def scrub_value(value: Any, secrets: frozenset[str]) -> Any:
    """Every string in a JSON-like value, scrubbed."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {key: scrub_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(item, secrets) for item in value]
    return value


def secret_forms(values: Iterable[str]) -> set[str]:
    """The values, and of `Scheme credential` header values the credential alone too."""
    found: set[str] = set()
    for value in values:
        for part in (value, value.partition(" ")[2]):
            if len(part.strip()) >= SHORTEST_SECRET:
                found.add(part.strip())
    return found


class ScrubbingFilter(logging.Filter):
    """Log records leave the process without any secret it holds."""

    def __init__(self, held: HeldSecrets) -> None:
        super().__init__()
        self._held = held

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._held.of(None)
        if secrets:
            message = record.getMessage()
            scrubbed = scrub(message, secrets)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = scrub(
                    logging.Formatter().formatException(record.exc_info), secrets
                )
                record.exc_info = None
        return True


# The one registry of this process: log lines are scrubbed by it wherever they come from.
HELD = HeldSecrets()
