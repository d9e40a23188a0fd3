"""A worker's cache of the validated states of the runs it serves, by version.

A tool call that finds the stored state's version in the cache uses the model kept there
instead of reading, parsing and validating the whole state (for 1.5 MB of JSON, ~60 ms),
and compares what the tool left with the JSON kept with it instead of writing it back.

A call takes its entry out of the cache and puts back the state it leaves: two attempts of
one call (a retry while the timed-out attempt still runs) never share a model, and a model
changed by a call that then failed and rolls back is dropped, not put back.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from pydantic import BaseModel

# The cache holds at most this many runs' states, and at most this many characters of their
# JSON all told (the least recently used go first). An entry holds its JSON and its model,
# several times the JSON's size (bench/state_cost.py prints it; README.md has figures).
STATE_CACHE_RUNS = 64
STATE_CACHE_CHARS = 32_000_000


@dataclass(frozen=True)
class CachedState:
    """A run's state at a stored version: its model and the model's JSON dump, which is
    what a call's result is compared with; `stored` says whether the store holds that very
    text (a state written before, or otherwise than by a dump, may differ in its spacing),
    so that a change can be written as a patch of it."""

    version: int
    model: BaseModel
    text: str
    stored: bool


class StateCache:
    def __init__(self, max_runs: int = STATE_CACHE_RUNS, max_chars: int = STATE_CACHE_CHARS):
        self._max_runs = max_runs
        self._max_chars = max_chars
        self._entries: OrderedDict[str, CachedState] = OrderedDict()
        self._chars = 0

    def version(self, key: str) -> int | None:
        entry = self._entries.get(key)
        return entry.version if entry is not None else None

    def take(self, key: str, version: int) -> CachedState | None:
        """The run's entry, taken out, if it is of `version`; an older one is dropped."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._chars -= len(entry.text)
        return entry if entry.version == version else None

    def put(self, key: str, entry: CachedState) -> None:
        """Keep `entry` as the run's newest; the least recently used go beyond the bounds."""
        self.take(key, entry.version)
        if len(entry.text) > self._max_chars:
            return
        self._entries[key] = entry
        self._chars += len(entry.text)
        while len(self._entries) > self._max_runs or self._chars > self._max_chars:
            _, dropped = self._entries.popitem(last=False)
            self._chars -= len(dropped.text)
