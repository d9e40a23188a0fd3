"""What a tool call changed in the state: the paths that differ, bounded for large states."""

from __future__ import annotations

import json
import random

from pydantic import BaseModel, computed_field

from loopline.environment.changes import (
    MAX_CHANGES,
    MAX_VALUE_CHARS,
    dumped_changes,
    state_changes,
)


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


class Item(BaseModel):
    name: str
    count: int
    tags: list[str]


class Stock(BaseModel):
    items: dict[str, Item]
    order: list[str]
    note: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return sum(item.count for item in self.items.values())


def test_changes_found_along_the_dumps_are_those_of_the_whole_states() -> None:
    rng = random.Random(7)
    names = ["a", "{b}", '"c"', 'd,"e":']
    for _ in range(300):
        before = Stock(
            items={
                f"k{i}": Item(name=rng.choice(names), count=i, tags=["x"] * rng.randint(0, 2))
                for i in range(rng.randint(0, 4))
            },
            order=[rng.choice("ab") for _ in range(rng.randint(0, 3))],
            note=rng.choice(names),
        )
        after = before.model_copy(deep=True)
        for _ in range(rng.randint(1, 2)):
            change = rng.randrange(4)
            if change == 0 and after.items:
                after.items[rng.choice(list(after.items))].count += 1
            elif change == 1:
                after.items[f"k{rng.randint(0, 5)}"] = Item(name="z", count=9, tags=[])
            elif change == 2 and after.order:
                after.order.pop(rng.randrange(len(after.order)))
            else:
                after.note = rng.choice(names)
        old, new = before.model_dump_json(), after.model_dump_json()
        expected = state_changes(json.loads(old), json.loads(new))
        assert dumped_changes(after, old, new) == expected, (old, new)
