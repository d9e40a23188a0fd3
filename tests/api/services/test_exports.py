"""How a recorded run becomes an export line, for what the scripted model cannot record:
tool arguments that were not JSON, a run's own tool lists, remote tools, log-probs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import TypeAdapter

from api.services.exports import OfferedTools, chat_line, rl_line
from environments.trivia import trivia
from loopline.environment.registry import Registry
from loopline.models import Message, RemoteCallPolicy, RunSpec, RunStatus, ToolCall, ToolInfo, Usage
from loopline.store.exports import ExportedRun

OFFERED = OfferedTools(Registry([trivia]))
ASK_USER = ToolInfo(name="ask_user", description="Ask the user.", parameters={"type": "object"})
SYSTEM = Message(role="system", content="Be brief.")
USER = Message(role="user", content="Capital of Peru?")
BAD_CALL = Message(
    role="assistant",
    tool_calls=[ToolCall(id="c1", name="lookup", invalid_arguments='{"topic": Peru')],
)
BAD_RESULT = Message(role="tool", tool_call_id="c1", content="not JSON", is_error=True)
GOOD_CALL = Message(
    role="assistant",
    content="Let me ask.",
    tool_calls=[ToolCall(id="c2", name="ask_user", arguments={"question": "Peru?"})],
)
GOOD_RESULT = Message(role="tool", tool_call_id="c2", content="yes", name="ask_user")
ANSWER = Message(role="assistant", content="Lima.")


def recorded(
    messages: list[dict[str, Any]], listed_tools: list[ToolInfo] | None = None, **spec: Any
) -> ExportedRun:
    return ExportedRun(
        run_id="r1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        status=RunStatus.completed,
        spec=RunSpec(
            environment="trivia", scenario="capital", args={}, model="m", max_steps=9, **spec
        ),
        model="m",
        steps=3,
        stop_reason=None,
        reward=1.0,
        success=True,
        evaluations=None,
        usage=Usage(),
        messages=messages,
        listed_tools=None if listed_tools is None else [t.model_dump() for t in listed_tools],
    )


def dumped(*messages: Message) -> list[dict[str, Any]]:
    return [message.model_dump() for message in messages]


def test_a_chat_line_is_a_fine_tuning_example_with_the_runs_own_tools() -> None:
    conversation = dumped(SYSTEM, USER, BAD_CALL, BAD_RESULT, GOOD_CALL, GOOD_RESULT, ANSWER)
    run = recorded(conversation, include_tools=["lookup"], client_tools=[ASK_USER])

    line = json.loads(chat_line(run, OFFERED.of(run)) or "")

    TypeAdapter(list[ChatCompletionMessageParam]).validate_python(line["messages"])
    TypeAdapter(list[ChatCompletionToolParam]).validate_python(line["tools"])
    assert [tool["function"]["name"] for tool in line["tools"]] == ["lookup", "ask_user"]
    bad, _, good, good_result, answer = line["messages"][2:]
    # The model's own text, kept as context but not trained on.
    assert bad == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"topic": Peru'},
            }
        ],
        "weight": 0,
    }
    assert good["content"] == "Let me ask." and "weight" not in good
    assert json.loads(good["tool_calls"][0]["function"]["arguments"]) == {"question": "Peru?"}
    assert good_result == {"role": "tool", "content": "yes", "tool_call_id": "c2"}
    assert answer == {"role": "assistant", "content": "Lima."}
    assert "parallel_tool_calls" not in line


def test_a_model_told_not_to_call_tools_in_parallel_says_so() -> None:
    run = recorded(dumped(USER, ANSWER))
    run.spec.llm.parallel_tool_calls = False
    assert json.loads(chat_line(run, []) or "")["parallel_tool_calls"] is False


def test_a_run_the_model_never_answered_in_is_no_example_and_no_episode() -> None:
    run = recorded(dumped(SYSTEM, USER))
    assert chat_line(run, OFFERED.of(run)) is None
    assert rl_line(run, []) is None


def test_rl_messages_carry_the_logprobs_the_model_step_recorded() -> None:
    logprobs = [{"token": "Lima", "logprob": -0.1}, {"token": ".", "logprob": -0.2}]
    facts = {"usage": {}, "finish_reason": "stop", "logprobs": logprobs}
    run = recorded([USER.model_dump(), {**ANSWER.model_dump(), **facts}])

    messages = json.loads(rl_line(run, []) or "")["messages"]
    assert messages[1] == {"role": "assistant", "content": "Lima.", "logprobs": logprobs}
    assert "logprobs" not in messages[0]


def test_remote_tools_are_those_listed_at_setup_and_unknown_environments_offer_none() -> None:
    listed = recorded([], [ASK_USER], remote=RemoteCallPolicy())
    assert [tool.function.name for tool in OFFERED.of(listed)] == ["ask_user"]
    gone = recorded([], client_tools=[ASK_USER])
    gone.spec.environment = "retired"
    assert [tool.function.name for tool in OFFERED.of(gone)] == ["ask_user"]
