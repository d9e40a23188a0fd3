"""How the viewer arranges a run's events into steps, and a batch's rewards into bins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.http.ui.views import histogram, run_page, step_pairs
from loopline.models import EventType, EventView, RunStatus, RunView, Usage


def a_run_view() -> RunView:
    return RunView(
        run_id="r1",
        workflow_id="run-r1",
        status=RunStatus.completed,
        environment="orders",
        scenario="refund",
        model="scripted",
        args={},
        max_steps=10,
        steps=3,
        usage=Usage(),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def event(seq: int, type_: EventType = EventType.message, **data: Any) -> EventView:
    created_at = datetime(2026, 1, 1, tzinfo=UTC)
    return EventView(seq=seq, key=f"event:{seq}", type=type_, created_at=created_at, data=data)


def call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "name": name, "arguments": arguments}


EVENTS = [
    event(1, role="system", content="be brief"),
    event(2, role="user", content="refund A-1"),
    event(3, role="assistant", content="", tool_calls=[call("c0", "get"), call("c1", "refund")]),
    event(
        4,
        role="tool",
        tool_call_id="c1",
        content="refunded",
        state_changes={
            "changes": [{"path": "/refunds/0", "op": "add", "before": None, "after": 5}],
            "omitted": 2,
        },
    ),
    event(5, role="tool", tool_call_id="c0", content="no such order", is_error=True),
    event(6, EventType.log, level="info", message="hello"),
    event(7, role="assistant", content="", tool_calls=[call("c0", "read")]),
    event(8, role="tool", tool_call_id="c0", content="text", client_side=True),
    event(9, role="assistant", content="Done."),
]


def test_tool_results_join_the_calls_of_their_own_step() -> None:
    shown = run_page(a_run_view(), EVENTS)

    assert [entry.step.number if entry.step else entry.event.seq for entry in shown.entries] == [
        1,
        2,
        1,
        2,
        3,
    ]
    first, second, last = shown.steps
    get, refund = first.calls
    assert (get.result, get.is_error) == ("no such order", True)
    assert refund.state_changes[0]["path"] == "/refunds/0" and refund.changes_omitted == 2
    # A later step may reuse a call id: its result is its own.
    assert (second.calls[0].result, second.calls[0].client_side) == ("text", True)
    assert last.content == "Done." and shown.last_seq == 9
    assert [log.seq for log in shown.logs] == [6]


def test_steps_are_compared_pair_by_pair() -> None:
    left = run_page(a_run_view(), EVENTS)
    right = run_page(a_run_view(), EVENTS[:4])

    pairs = step_pairs(left, right)

    assert [(pair.number, pair.differs) for pair in pairs] == [(1, True), (2, True), (3, True)]
    assert not step_pairs(left, left)[0].differs


def test_rewards_fall_into_bins_whatever_their_range() -> None:
    assert [b.count for b in histogram([0.0, 0.05, 1.0, 1.0])] == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert sum(b.count for b in histogram([-3.0, 7.0, 2.0])) == 3
    assert [b.count for b in histogram([4.0, 4.0])][5] == 2
    assert [b.count for b in histogram([-1e308, 1e308])] == [2]
    assert histogram([float("nan")]) == []
