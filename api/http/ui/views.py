"""What the viewer's pages show, built from what the services return: a run's events as
a conversation of steps, two runs side by side, a batch's reward histogram."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from itertools import zip_longest
from typing import Any

from loopline.models import EventType, EventView, RunView, ToolCall, Usage

HISTOGRAM_BINS = 10
# Timeline entries of these types; the others have sections of their own on the page.
TIMELINE_TYPES = frozenset({EventType.message, EventType.status, EventType.summary})


@dataclass
class CallView:
    """A tool call of a step, with what answered it."""

    call: ToolCall
    result: str | None = None
    is_error: bool = False
    client_side: bool = False
    state_changes: list[dict[str, Any]] = field(default_factory=list)
    changes_omitted: int = 0


@dataclass
class StepView:
    """One model step: what the model said and asked for, and what it cost."""

    number: int
    at: datetime
    content: str
    calls: list[CallView]
    usage: Usage | None
    latency_ms: float | None
    finish_reason: str | None
    note: str | None


@dataclass
class Entry:
    """One line of the timeline: a message outside the steps, a step, or a status change."""

    event: EventView
    step: StepView | None = None


@dataclass
class RunPageView:
    run: RunView
    entries: list[Entry]
    steps: list[StepView]
    logs: list[EventView]
    last_seq: int


def run_page(run: RunView, events: list[EventView]) -> RunPageView:
    """The run's events arranged as the page shows them."""
    entries: list[Entry] = []
    steps: list[StepView] = []
    calls: dict[str, CallView] = {}
    for event in events:
        if event.type not in TIMELINE_TYPES:
            continue
        role = event.data.get("role")
        if role == "assistant":
            step = _step(len(steps) + 1, event)
            steps.append(step)
            calls.update({view.call.id: view for view in step.calls})
            entries.append(Entry(event, step))
        elif role == "tool" and event.data.get("tool_call_id") in calls:
            _answer(calls[str(event.data["tool_call_id"])], event.data)
        else:
            entries.append(Entry(event))
    logs = [event for event in events if event.type is EventType.log]
    last_seq = events[-1].seq if events else 0
    return RunPageView(run=run, entries=entries, steps=steps, logs=logs, last_seq=last_seq)


def _step(number: int, event: EventView) -> StepView:
    data = event.data
    calls = [CallView(ToolCall.model_validate(call)) for call in data.get("tool_calls") or []]
    usage = Usage.model_validate(data["usage"]) if data.get("usage") else None
    latency = data.get("provider_latency_ms")
    return StepView(
        number=number,
        at=event.created_at,
        content=str(data.get("content") or ""),
        calls=calls,
        usage=usage,
        latency_ms=float(latency) if isinstance(latency, int | float) else None,
        finish_reason=data.get("finish_reason"),
        note=data.get("note"),
    )


def _answer(view: CallView, data: dict[str, Any]) -> None:
    view.result = str(data.get("content", ""))
    view.is_error = bool(data.get("is_error"))
    view.client_side = bool(data.get("client_side"))
    changes = data.get("state_changes") or {}
    view.state_changes = list(changes.get("changes") or [])
    view.changes_omitted = int(changes.get("omitted") or 0)


@dataclass
class StepPair:
    number: int
    left: StepView | None
    right: StepView | None

    @property
    def differs(self) -> bool:
        if self.left is None or self.right is None:
            return True
        return _signature(self.left) != _signature(self.right)


def step_pairs(left: RunPageView, right: RunPageView) -> list[StepPair]:
    """The two runs' steps, step by step."""
    return [
        StepPair(number, a, b)
        for number, (a, b) in enumerate(zip_longest(left.steps, right.steps), start=1)
    ]


def _signature(step: StepView) -> tuple[Any, ...]:
    calls = tuple(
        (view.call.name, json.dumps(view.call.arguments, sort_keys=True), view.result)
        for view in step.calls
    )
    return step.content, calls


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int


def histogram(rewards: list[float], bins: int = HISTOGRAM_BINS) -> list[Bin]:
    """Rewards counted in equal bins: over 0 to 1 when they all lie there, else their range."""
    finite = [reward for reward in rewards if math.isfinite(reward)]
    if not finite:
        return []
    low, high = min(finite), max(finite)
    if low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    elif low == high:
        low, high = low - 0.5, high + 0.5
    width = (high - low) / bins
    if not math.isfinite(width):
        # Rewards near the float limits: their range has no finite width to divide.
        return [Bin(low, high, len(finite))]
    counts = [0] * bins
    for reward in finite:
        counts[min(bins - 1, max(0, int((reward - low) / width)))] += 1
    return [Bin(low + i * width, low + (i + 1) * width, count) for i, count in enumerate(counts)]
