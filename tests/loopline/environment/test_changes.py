"""What a tool call changed in the state: the paths that differ, bounded for large states."""

from __future__ import annotations

from loopline.environment.changes import MAX_CHANGES, MAX_VALUE_CHARS, state_changes


def test_added_removed_and_replaced_paths_are_named() -> None:
    before = {"orders": {"A": {"status": "placed"}}, "refunds": [], "note": "x", "n": 1}
    after = {"orders": {"A": {"status": "cancelled"}}, "refunds": [{"amount": 5}], "n": True}

    found = state_changes(before, after)

    assert found is not None and found.omitted == 0
    assert [(c.op, c.path, c.before, c.after) for c in found.changes] == [
        ("replace", "/orders/A/status", "placed", "cancelled"),
        ("add", "/refunds/0", None, {"amount": 5}),
        ("remove", "/note", "x", None),
        # true is not the number 1 in JSON, though Python says they are equal.
        ("replace", "/n", 1, True),
    ]


def test_an_unchanged_state_has_no_changes() -> None:
    state = {"items": [1, 2, {"a": None}]}
    assert state_changes(state, {"items": [1, 2, {"a": None}]}) is None


def test_a_large_rewrite_lists_the_first_changes_and_counts_the_rest() -> None:
    found = state_changes({"xs": list(range(500))}, {"xs": [-1] * 500})

    assert found is not None
    assert len(found.changes) == MAX_CHANGES and found.omitted == 500 - MAX_CHANGES


def test_long_values_are_cut() -> None:
    found = state_changes({"log": ""}, {"log": "y" * 10_000, "big": {"k": "z" * 10_000}})

    assert found is not None
    assert all(len(str(change.after)) <= MAX_VALUE_CHARS + 1 for change in found.changes)
