"""A stateful customer-support environment: orders, refunds and tickets.

Its tools change the shop's state; its rewards check the final state, so an effect applied
twice (or not at all) shows in the reward.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from loopline import Environment, Outcome, Reward, Setup, ToolContext, ToolError

OrderStatus = Literal["placed", "shipped", "delivered", "cancelled"]


class Order(BaseModel):
    order_id: str
    customer: str
    item: str
    total: float
    status: OrderStatus


class Refund(BaseModel):
    order_id: str
    amount: float
    reason: str
    idempotency_key: str


class Ticket(BaseModel):
    ticket_id: str
    order_id: str
    subject: str
    idempotency_key: str


class Shop(BaseModel):
    orders: dict[str, Order] = Field(default_factory=dict)
    refunds: list[Refund] = Field(default_factory=list)
    tickets: list[Ticket] = Field(default_factory=list)

    def order(self, order_id: str) -> Order:
        try:
            return self.orders[order_id]
        except KeyError:
            raise ToolError(
                f"no order {order_id!r}; find_orders lists a customer's orders"
            ) from None

    def refunded(self, order_id: str) -> float:
        return sum(refund.amount for refund in self.refunds if refund.order_id == order_id)


def seeded_shop() -> Shop:
    orders = [
        Order(order_id="A-1001", customer="ada", item="kettle", total=39.0, status="delivered"),
        Order(order_id="A-1002", customer="ada", item="desk lamp", total=54.5, status="delivered"),
        Order(order_id="A-1003", customer="ada", item="bookshelf", total=120.0, status="placed"),
        Order(order_id="B-2001", customer="bob", item="headphones", total=89.9, status="shipped"),
        Order(order_id="B-2002", customer="bob", item="cable", total=9.5, status="placed"),
        Order(order_id="B-2003", customer="bob", item="monitor", total=240.0, status="placed"),
    ]
    return Shop(orders={order.order_id: order for order in orders})


orders = Environment(
    "orders",
    description="Customer support for a small shop: look up orders, refund, cancel, open tickets.",
    state=Shop,
    system_prompt="You are a careful support agent. Use the tools; change only what is asked.",
)


@orders.tool
def find_orders(shop: Shop, customer: str) -> list[dict[str, object]]:
    """List a customer's orders with their status and total."""
    return [order.model_dump() for order in shop.orders.values() if order.customer == customer]


@orders.tool
def get_order(shop: Shop, order_id: str) -> Order:
    """Show one order."""
    return shop.order(order_id)


@orders.tool
def issue_refund(
    shop: Shop, context: ToolContext, order_id: str, amount: float, reason: str
) -> str:
    """Refund part or all of a delivered or shipped order's total to the customer."""
    order = shop.order(order_id)
    if order.status in ("placed", "cancelled"):
        raise ToolError(f"order {order_id} is {order.status}: cancel it instead of refunding")
    left = round(order.total - shop.refunded(order_id), 2)
    if amount <= 0 or amount > left:
        raise ToolError(f"amount must be more than 0 and at most {left} for order {order_id}")
    shop.refunds.append(
        Refund(
            order_id=order_id,
            amount=amount,
            reason=reason,
            idempotency_key=context.idempotency_key,
        )
    )
    return f"refunded {amount:.2f} on order {order_id}"


@orders.tool
def cancel_order(shop: Shop, order_id: str) -> str:
    """Cancel an order that has not shipped yet."""
    order = shop.order(order_id)
    if order.status != "placed":
        raise ToolError(f"order {order_id} is {order.status}; only placed orders can be cancelled")
    order.status = "cancelled"
    return f"order {order_id} cancelled"


@orders.tool
def open_ticket(shop: Shop, context: ToolContext, order_id: str, subject: str) -> str:
    """Open a support ticket about an order; returns the ticket id."""
    shop.order(order_id)
    ticket_id = f"T-{len(shop.tickets) + 1}"
    shop.tickets.append(
        Ticket(
            ticket_id=ticket_id,
            order_id=order_id,
            subject=subject,
            idempotency_key=context.idempotency_key,
        )
    )
    return ticket_id


@orders.scenario(description="A delivered order arrived damaged: refund it in full, log a ticket.")
def refund_damaged(customer: str, order_id: str) -> Setup:
    shop = seeded_shop()
    if shop.orders.get(order_id, None) is None or shop.orders[order_id].customer != customer:
        mine = [order.order_id for order in shop.orders.values() if order.customer == customer]
        raise ValueError(f"customer {customer!r} has no order {order_id!r}; theirs: {mine}")
    return Setup(
        prompt=(
            f"Customer {customer} writes: my order {order_id} arrived damaged. "
            "Refund it in full and open a ticket about the damage, then tell me what you did."
        ),
        state=shop,
    )


@refund_damaged.evaluation
def _score_refund(outcome: Outcome[Shop]) -> Reward:
    shop = outcome.state
    assert shop is not None
    order_id = outcome.args["order_id"]
    order = shop.orders[order_id]
    refunds = [refund for refund in shop.refunds if refund.order_id == order_id]
    checks = {
        "refunded_in_full": abs(shop.refunded(order_id) - order.total) < 0.005,
        "refunded_once": len(refunds) == 1,
        "ticket_opened": any(ticket.order_id == order_id for ticket in shop.tickets),
        "no_other_refunds": all(refund.order_id == order_id for refund in shop.refunds),
    }
    return Reward(value=sum(checks.values()) / len(checks), details=checks)


@orders.scenario(description="Cancel every order of a customer that has not shipped yet.")
def cancel_unshipped(customer: str) -> Setup:
    return Setup(
        prompt=f"Customer {customer} is moving abroad: cancel all their orders that have not "
        "shipped yet, and leave the others alone.",
        state=seeded_shop(),
    )


@cancel_unshipped.evaluation
def _score_cancellations(outcome: Outcome[Shop]) -> Reward:
    shop = outcome.state
    assert shop is not None
    original = seeded_shop()
    wrong = [
        order_id
        for order_id, before in original.orders.items()
        if shop.orders[order_id].status != _expected_status(before, outcome.args["customer"])
    ]
    return Reward(value=0.0 if wrong else 1.0, details={"orders_in_wrong_state": wrong})


def _expected_status(before: Order, customer: str) -> OrderStatus:
    if before.customer == customer and before.status == "placed":
        return "cancelled"
    return before.status
