"""A worker SIGKILLed mid-run: another worker finishes it, every side effect applied once."""

from __future__ import annotations

import signal

from tests.harness import Stack, answer_step, run_body, tool_step, wait_for_run, wait_for_steps

TICKETS = 12


async def test_killed_worker_loses_nothing_and_repeats_nothing(private_stack: Stack) -> None:
    steps = [
        tool_step("issue_refund", 0.3, order_id="A-1002", amount=54.5, reason="damaged"),
        *(
            tool_step("open_ticket", 0.3, order_id="A-1002", subject=f"note {n}")
            for n in range(1, TICKETS + 1)
        ),
        answer_step("Refunded and logged."),
    ]
    body = run_body("orders", "refund_damaged", {"customer": "ada", "order_id": "A-1002"}, *steps)
    async with private_stack.client(timeout=60) as api:
        first = private_stack.start_worker()
        run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
        await wait_for_steps(api, run_id, 4, within=60)
        first.send_signal(signal.SIGKILL)
        second = private_stack.start_worker()
        await wait_for_steps(api, run_id, 9, within=90)
        second.send_signal(signal.SIGKILL)
        private_stack.start_worker()
        run = await wait_for_run(api, run_id, within=120)
        state = (await api.get(f"/v1/runs/{run_id}", params={"include_state": True})).json()

    assert run["status"] == "completed", run["error"]
    assert run["steps"] == TICKETS + 2
    assert run["reward"] == 1.0, run["reward_details"]
    shop = state["state"]
    assert len(shop["refunds"]) == 1
    subjects = [ticket["subject"] for ticket in shop["tickets"]]
    assert subjects == [f"note {n}" for n in range(1, TICKETS + 1)]
    assert [ticket["ticket_id"] for ticket in shop["tickets"]] == [
        f"T-{n}" for n in range(1, TICKETS + 1)
    ]
    keys = [ticket["idempotency_key"] for ticket in shop["tickets"]]
    assert len(set(keys)) == TICKETS
