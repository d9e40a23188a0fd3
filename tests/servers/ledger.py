"""A small stateful environment in two versions, as two deploys of the same code: version 2
rounds entries to whole units and asks for a higher total. The replay tests run a run on one
and replay it on the other."""

from __future__ import annotations

from pydantic import BaseModel, Field

from loopline import Environment, Outcome, Reward, Setup


class Ledger(BaseModel):
    entries: list[float] = Field(default_factory=list)


def build(version: int) -> Environment:
    ledger = Environment("ledger", description="Add entries to a ledger.", state=Ledger)

    @ledger.tool
    def add_entry(book: Ledger, amount: float) -> str:
        """Add an entry to the ledger."""
        book.entries.append(round(amount) if version == 2 else amount)
        return f"total {sum(book.entries):g}"

    @ledger.scenario(description="Bring the ledger's total to `target`.")
    def reach(target: float) -> Setup:
        return Setup(prompt=f"Add entries until the total is {target:g}.", state=Ledger())

    @reach.evaluation
    def _reached(outcome: Outcome[Ledger]) -> Reward:
        assert outcome.state is not None
        needed = outcome.args["target"] + (1 if version == 2 else 0)
        return Reward(value=1.0 if sum(outcome.state.entries) >= needed else 0.0)

    return ledger
