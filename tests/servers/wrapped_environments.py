"""An environment wrapped around code that already has its tool schemas, as a benchmark's
does; the shared test stack serves it besides the built-in environments."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from loopline import Environment, Outcome, Reward, Setup, ToolError


class Ledger(BaseModel):
    balances: dict[str, int]


class Bank(Ledger):
    """The environment's state: a ledger; tools annotated with either receive it."""

    transfers: int = 0


TRANSFER_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "transfer",
        "description": "Move money between two accounts.",
        "parameters": {
            "type": "object",
            "properties": {
                "source": {"type": "string", "description": "The account paying."},
                "target": {"type": "string", "description": "The account paid."},
                "amount": {"type": "integer", "minimum": 1},
            },
            "required": ["source", "target", "amount"],
            "additionalProperties": False,
        },
    },
}
BALANCE_SCHEMA: dict[str, Any] = {
    "name": "balance",
    "description": "The balance of one account.",
    "inputSchema": {
        "type": "object",
        "properties": {"account": {"type": "string"}},
        "required": ["account"],
    },
}


def transfer(ledger: Ledger, source: str, target: str, amount: int) -> str:
    if ledger.balances.get(source, 0) < amount:
        raise ToolError(f"{source} has less than {amount}")
    ledger.balances[source] -= amount
    ledger.balances[target] = ledger.balances.get(target, 0) + amount
    if isinstance(ledger, Bank):
        ledger.transfers += 1
    return f"moved {amount} from {source} to {target}"


def balance(account: str, bank: Bank | None = None) -> int:
    assert bank is not None
    return bank.balances.get(account, 0)


wrapped = Environment(
    "wrapped", description="A bank whose tools came with their schemas.", state=Bank
)
wrapped.add_tool(transfer, TRANSFER_SCHEMA)
wrapped.add_tool(balance, BALANCE_SCHEMA)


@wrapped.scenario
def pay(amount: int) -> Setup:
    """Pay Bob.

    Args:
        amount: What Alice owes Bob.
    """
    return Setup(prompt=f"Pay bob {amount} from alice.", state=Bank(balances={"alice": 10}))


@pay.evaluation
def _paid(outcome: Outcome[Bank]) -> Reward:
    assert outcome.state is not None
    paid = outcome.state.balances.get("bob") == outcome.args["amount"]
    seen = {"run_id": outcome.run_id, "task": outcome.task, "taskset_id": outcome.taskset_id}
    return Reward(
        value=1.0 if paid else 0.0, details={"transfers": outcome.state.transfers, **seen}
    )
