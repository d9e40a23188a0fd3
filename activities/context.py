"""What the model sees: the conversation, with older exchanges folded into a summary.

An exchange starts at an assistant message and holds the tool results and user replies
that follow it. With `summarize_every_n_turns` = N and `context_stride` = K, every N steps
the exchanges before the last K are summarised; the model then sees the prompt, the summary
and the last exchanges verbatim. The full conversation stays in the trace store.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from loopline.models import Message, ModelConfig

SUMMARY_INSTRUCTIONS = (
    "You compress the history of an agent's work. Summarise the transcript below: what was "
    "asked, which tools were called with which important arguments, what they returned, and "
    "what is still open. Keep ids, numbers and names exactly. Answer with the summary only."
)
SUMMARY_HEADING = "Summary of the earlier work on this task:"
MAX_LINE_CHARS = 2000


class Summary(BaseModel):
    content: str
    covers: int  # messages[:covers] (after the head) are replaced by the summary


def head_length(messages: list[Message]) -> int:
    """The system prompt(s) and the task prompt: always sent verbatim."""
    for index, message in enumerate(messages):
        if message.role == "user":
            return index + 1
    return len(messages)


def summary_due(config: ModelConfig, step: int) -> bool:
    every = config.summarize_every_n_turns
    return every > 0 and step > 1 and (step - 1) % every == 0


def cut_point(messages: list[Message], keep: int) -> int:
    """Index of the first message of the last `keep` exchanges (0 if there are no more)."""
    starts = [i for i, m in enumerate(messages) if m.role == "assistant"]
    if len(starts) <= keep:
        return 0
    return starts[-keep]


def compose(messages: list[Message], summary: Summary | None) -> list[Message]:
    if summary is None:
        return messages
    head = messages[: head_length(messages)]
    folded = Message(role="user", content=f"{SUMMARY_HEADING}\n{summary.content}")
    return [*head, folded, *messages[summary.covers :]]


def summary_request(messages: list[Message], previous: Summary | None, cut: int) -> list[Message]:
    start = previous.covers if previous else head_length(messages)
    lines = [f"{SUMMARY_HEADING}\n{previous.content}"] if previous else []
    lines += [_line(message) for message in messages[start:cut]]
    return [
        Message(role="system", content=SUMMARY_INSTRUCTIONS),
        Message(role="user", content="\n".join(lines)),
    ]


def _line(message: Message) -> str:
    if message.role == "tool":
        text = f"tool {message.name} returned: {message.content}"
    elif message.tool_calls:
        calls = "\n".join(
            f"assistant called {call.name}({json.dumps(call.arguments)})"
            for call in message.tool_calls
        )
        text = f"assistant: {message.content}\n{calls}" if message.content else calls
    else:
        text = f"{message.role}: {message.content}"
    return text[:MAX_LINE_CHARS]
