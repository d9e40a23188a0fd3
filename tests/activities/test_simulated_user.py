"""A second model plays the user in multi-turn scenarios (scripted on both sides here)."""

from __future__ import annotations

import httpx

from tests.harness import answer_step, run_body, run_to_end


def conversation(trajectory: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [
        (event["data"]["role"], event["data"]["content"])  # type: ignore[index]
        for event in trajectory
        if event["type"] == "message"
    ]


async def test_the_user_replies_until_it_says_it_is_done(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Peru"},
        answer_step("Which country do you mean?"),
        answer_step("The capital of Peru is Lima."),
        user_model="scripted",
        user_script={"steps": [{"content": "Peru."}, {"content": "Thanks! ###STOP###"}]},
    )
    run = await run_to_end(api, body)

    assert run["status"] == "completed", run
    assert run["stop_reason"] == "user_done" and run["reward"] == 1.0
    detail = await api.get(f"/v1/runs/{run['run_id']}", params={"include_trajectory": True})
    assert conversation(detail.json()["trajectory"])[1:] == [
        ("user", "What is the capital city of Peru?"),
        ("assistant", "Which country do you mean?"),
        ("user", "Peru."),
        ("assistant", "The capital of Peru is Lima."),
        ("user", "Thanks!"),
    ]


async def test_the_conversation_ends_at_the_turn_limit(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Peru"},
        answer_step("Which country?"),
        repeat=True,
        user_model="scripted",
        user_script={"steps": [{"content": "Peru, I said."}], "repeat": True},
        max_user_turns=3,
    )
    run = await run_to_end(api, body)

    assert run["status"] == "completed" and run["stop_reason"] == "max_user_turns"
    assert run["steps"] == 4 and run["reward"] == 0.0
