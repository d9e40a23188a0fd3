"""What a tool call changed in the environment's state, as the paths that differ.

Recorded on each tool result event, so that a reader of the run (the viewer, an export)
sees the state move call by call without the store keeping a copy of it per call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import from_json, to_json

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


def state_changes(before: Any, after: Any, at: str = "") -> StateChanges | None:
    """The differences from `before` to `after` (JSON values, found at path `at` of the
    state); None when there are none."""
    found: list[StateChange] = []
    total = _compare(before, after, at, found)
    if total == 0:
        return None
    return StateChanges(changes=found, omitted=total - len(found))


def _compare(before: Any, after: Any, path: str, found: list[StateChange]) -> int:
    if before == after and type(before) is type(after):
        # Equal parts are passed over at C speed: a large state changed in one place is
        # walked along that path only (1 and 1.0 deep inside them count as equal).
        return 0
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


def text_splice(before: str, after: str) -> tuple[int, int, int]:
    """Where two texts differ: the start of the span between their common prefix and common
    suffix, and its end in `before` and in `after`."""
    start = _common_prefix(before, after)
    tail = _common_suffix(before, after, min(len(before), len(after)) - start)
    return start, len(before) - tail, len(after) - tail


def dumped_changes(model: BaseModel, before: str, after: str) -> StateChanges | None:
    """The changes from JSON text `before` to `after`, `model`'s dump, parsing only the
    smallest part of the two that holds every difference.

    The texts are walked along the model from the root into the one part that holds every
    difference, measuring the parts on its nearer side by dumping them (the part at either
    end is measured by its parent's bounds), as long as the dump is laid out as `to_json`
    makes it. The part reached is parsed in both texts; where it is not one value in both
    (a part dumped otherwise, or a change at its very end), its parent is, up to the root.
    """
    start, _, after_end = text_splice(before, after)
    walked = [("", 0, len(after))]
    node: Any = model
    while (part := _part_holding(node, after, walked[-1][1:], (start, after_end))) is not None:
        label, node, begin, end = part
        walked.append((f"{walked[-1][0]}/{label}", begin, end))
    shift = len(after) - len(before)
    for path, begin, end in reversed(walked):
        try:
            parts = from_json(before[begin : end - shift]), from_json(after[begin:end])
        except ValueError:
            continue
        return state_changes(*parts, path)
    raise ValueError("the texts are not JSON")


def _part_holding(
    node: Any, text: str, bounds: tuple[int, int], span: tuple[int, int]
) -> tuple[str, Any, int, int] | None:
    """The part of `node` (dumped at `bounds` of `text`) whose dump holds all of `span`:
    its label, value, start and end; None when no one part does, or the dump is not laid
    out as expected."""
    children = _children(node)
    keyed = isinstance(node, BaseModel | dict)
    begin, end = bounds
    opens, closes = ("{", "}") if keyed else ("[", "]")
    if not children or not text.startswith(opens, begin) or not text.startswith(closes, end - 1):
        return None

    def head(index: int) -> str:
        """What comes before a part's value: a comma after the first, and its key."""
        key = children[index][0]
        return ("," if index else "") + (_json(key) + ":" if keyed else "")

    if _cheaper_from_the_start(len(children), bounds, span):
        found = _from_the_start(children, head, text, begin + 1, end - 1, span)
    else:
        found = _from_the_end(children, head, text, begin + 1, end - 1, span)
    if found is None:
        return None
    index, value_start, value_end = found
    return str(children[index][0]), children[index][1], value_start, value_end


def _cheaper_from_the_start(parts: int, bounds: tuple[int, int], span: tuple[int, int]) -> bool:
    """Whether measuring from the start dumps less than from the end: the text before (or
    after) `span`, and the part holding it, of the mean length, unless it is the part at
    that walk's far end (which its parent's bounds measure)."""
    before, after = span[0] - bounds[0], bounds[1] - span[1]
    part = max((bounds[1] - bounds[0]) / parts, span[1] - span[0])
    from_the_start = before + (0 if after < part else part)
    from_the_end = after + (0 if before < part else part)
    return from_the_start <= from_the_end


def _from_the_start(
    children: list[tuple[Any, Any]],
    head: Callable[[int], str],
    text: str,
    first: int,
    last: int,
    span: tuple[int, int],
) -> tuple[int, int, int] | None:
    position = first
    for index, (_, value) in enumerate(children):
        before_value = head(index)
        if not text.startswith(before_value, position):
            return None
        position += len(before_value)
        if span[0] < position:
            return None
        value_end = last if index == len(children) - 1 else _measured(value, text, position)
        if value_end is None:
            return None
        if span[1] <= value_end:
            return index, position, value_end
        if span[0] < value_end:
            return None
        position = value_end
    return None


def _from_the_end(
    children: list[tuple[Any, Any]],
    head: Callable[[int], str],
    text: str,
    first: int,
    last: int,
    span: tuple[int, int],
) -> tuple[int, int, int] | None:
    position = last
    for index in range(len(children) - 1, -1, -1):
        before_value = head(index)
        if span[1] > position:
            return None
        if index == 0:
            value_start = first + len(before_value)
            if not text.startswith(before_value, first):
                return None
        else:
            value_text = _json(children[index][1])
            value_start = position - len(value_text)
            if not text.startswith(value_text, value_start):
                return None
        if span[0] >= value_start:
            return index, value_start, position
        position = value_start - len(before_value)
        if span[1] > position or not text.startswith(before_value, position):
            return None
    return None


def _measured(value: Any, text: str, position: int) -> int | None:
    """Where the dump of `value` found at `position` of `text` ends; None if it is not there."""
    dumped = _json(value)
    return position + len(dumped) if text.startswith(dumped, position) else None


def _json(value: Any) -> str:
    return to_json(value).decode()


def _children(node: Any) -> list[tuple[Any, Any]] | None:
    """The parts of a model, a dict with text keys or a list, in the order of their dump."""
    if isinstance(node, BaseModel):
        fields = type(node).model_fields
        return [(name, getattr(node, name)) for name, field in fields.items() if not field.exclude]
    if isinstance(node, dict):
        items = list(node.items())
        return items if all(type(key) is str for key, _ in items) else None
    if isinstance(node, list | tuple):
        return list(enumerate(node))
    return None


# Texts are compared a chunk at a time, then the differing chunk halved: C-speed compares.
_CHUNK = 1 << 16


def _common_prefix(a: str, b: str) -> int:
    length = min(len(a), len(b))
    done = 0
    while done < length:
        step = min(_CHUNK, length - done)
        chunk_a, chunk_b = a[done : done + step], b[done : done + step]
        if chunk_a != chunk_b:
            return done + _shared_start(chunk_a, chunk_b)
        done += step
    return done


def _common_suffix(a: str, b: str, limit: int) -> int:
    done = 0
    while done < limit:
        step = min(_CHUNK, limit - done)
        chunk_a = a[len(a) - done - step : len(a) - done]
        chunk_b = b[len(b) - done - step : len(b) - done]
        if chunk_a != chunk_b:
            return done + _shared_start(chunk_a[::-1], chunk_b[::-1])
        done += step
    return done


def _shared_start(a: str, b: str) -> int:
    """How many characters two differing texts of one length start with alike."""
    low, high = 0, len(a) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
