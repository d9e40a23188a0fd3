"""What a tool call changed in the environment's state, as the paths that differ.

Recorded on each tool result event, so that a reader of the run (the viewer, an export)
sees the state move call by call without the store keeping a copy of it per call.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

# A call that rewrites a large state is summarised by its first changes; the rest are
# counted, so a reader knows the list is not whole.
MAX_CHANGES = 50
# Values beyond this length are cut in a change (the state itself keeps them whole).
MAX_VALUE_CHARS = 500


class StateChange(BaseModel):
    """One path of the state that a call added, removed or changed."""

    path: str = Field(description="Keys and list indexes from the root, joined by '/'.")
    before: Any = None
    after: Any = None
    op: str = Field(description="add, remove or replace")


class StateChanges(BaseModel):
    changes: list[StateChange]
    omitted: int = Field(default=0, description="Further changes not listed.")


def state_changes(before: Any, after: Any) -> StateChanges | None:
    """The differences from `before` to `after` (JSON values); None when there are none."""
    found: list[StateChange] = []
    total = _compare(before, after, "", found)
    if total == 0:
        return None
    return StateChanges(changes=found, omitted=total - len(found))


def _compare(before: Any, after: Any, path: str, found: list[StateChange]) -> int:
    if isinstance(before, dict) and isinstance(after, dict):
        total = 0
        for key in [*before, *(key for key in after if key not in before)]:
            child = f"{path}/{key}"
            if key not in after:
                total += _note(found, child, "remove", before[key], None)
            elif key not in before:
                total += _note(found, child, "add", None, after[key])
            else:
                total += _compare(before[key], after[key], child, found)
        return total
    if isinstance(before, list) and isinstance(after, list):
        total = 0
        for index in range(max(len(before), len(after))):
            child = f"{path}/{index}"
            if index >= len(after):
                total += _note(found, child, "remove", before[index], None)
            elif index >= len(before):
                total += _note(found, child, "add", None, after[index])
            else:
                total += _compare(before[index], after[index], child, found)
        return total
    if before == after and type(before) is type(after):
        return 0
    return _note(found, path or "/", "replace", before, after)


def _note(found: list[StateChange], path: str, op: str, before: Any, after: Any) -> int:
    if len(found) < MAX_CHANGES:
        found.append(StateChange(path=path, op=op, before=_cut(before), after=_cut(after)))
    return 1


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    if isinstance(value, dict | list):
        text = json.dumps(value, default=str)
        if len(text) > MAX_VALUE_CHARS:
            return text[:MAX_VALUE_CHARS] + "…"
    return value
