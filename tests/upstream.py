"""A local model server speaking the OpenAI Chat Completions and Anthropic Messages wire
formats, JSON and server-sent events, that plays replies a test plans per model name.

The real `openai` and `anthropic` SDKs inside a real worker talk to it over HTTP, so these
tests cover request building, streaming, parsing and error handling end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.harness import free_port, serving


@dataclass
class Reply:
    text: str = ""
    # (name, argument text exactly as the model "wrote" it)
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    prompt_tokens: int = 100
    output_tokens: int = 20
    reasoning_tokens: int = 0
    # Pause between streamed chunks, for tests that watch text arrive live.
    chunk_delay: float = 0.0
    # Answer only once this is set, for tests that order what overlaps a model call.
    held: asyncio.Event | None = None


@dataclass
class Failure:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


Plan = Reply | Failure


@dataclass(frozen=True)
class Quirks:
    """Where self-hosted OpenAI-compatible servers part from OpenAI's API, as llama.cpp's
    (llama-cpp-python's server with `chatml-function-calling`) does."""

    # A null `content` beside tool calls: a 500 whose body is a pydantic validation error.
    refuses_null_content: bool = False
    # Tools are not shown to the model unless `tool_choice` is sent: planned calls are lost.
    tools_need_choice: bool = False
    # A streamed request with tool_choice "auto": a 200 whose stream ends with no event (the
    # server's handler raised "Automatic streaming tool choice is not supported").
    drops_streamed_tool_choice: bool = False
    # Streams carry no usage chunk, even when asked for one.
    no_stream_usage: bool = False


NULL_CONTENT_REFUSAL = (
    "1 validation error for ChatCompletionRequestAssistantMessage\ncontent\n  Input should "
    "be a valid string [type=string_type, input_value=None, input_type=NoneType]"
)


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: dict[str, Any]


class Upstream:
    def __init__(self) -> None:
        self.port = free_port()
        self._plans: dict[str, deque[Plan]] = defaultdict(deque)
        self._quirks: dict[str, Quirks] = {}
        self.requests: dict[str, list[Received]] = defaultdict(list)
        self._asked = asyncio.Event()
        self.app = self._build()

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def plan(self, model: str, *plans: Plan) -> None:
        self._plans[model].extend(plans)

    async def asked(self, model: str, times: int = 1) -> None:
        """Return once `model` has been asked `times` times (the server shares this loop)."""
        while len(self.requests[model]) < times:
            self._asked.clear()
            await self._asked.wait()

    def behave(self, model: str, quirks: Quirks) -> None:
        """Serve `model` the way such a server would."""
        self._quirks[model] = quirks

    def _next(self, model: str) -> Plan:
        queue = self._plans[model]
        if not queue:
            return Failure(500, f"the test planned no more replies for model {model!r}")
        return queue.popleft()

    async def _receive(self, request: Request, body: dict[str, Any]) -> Plan:
        model = body.get("model", "")
        self.requests[model].append(Received(time.monotonic(), dict(request.headers), body))
        self._asked.set()
        plan = self._next(model)
        if isinstance(plan, Reply) and plan.held is not None:
            await plan.held.wait()
        return plan

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            quirks = self._quirks.get(body.get("model", ""), Quirks())
            if refused := _refused(body, quirks):
                self.requests[body["model"]].append(
                    Received(time.monotonic(), dict(request.headers), body)
                )
                return refused
            plan = await self._receive(request, body)
            if isinstance(plan, Failure):
                error = {"error": {"message": plan.message, "type": "test_error", "code": None}}
                return JSONResponse(error, status_code=plan.status, headers=plan.headers)
            if quirks.tools_need_choice and "tool_choice" not in body:
                plan = Reply(text=plan.text or "I see no tools.")
            if body.get("stream"):
                chunks = _openai_chunks(body, plan, usage=not quirks.no_stream_usage)
                return _sse(chunks, named=False, delay=plan.chunk_delay)
            return JSONResponse(_openai_completion(body, plan))

        @app.post("/v1/messages")
        async def messages(request: Request) -> Response:
            body = await request.json()
            plan = await self._receive(request, body)
            if isinstance(plan, Failure):
                error = {"type": "error", "error": {"type": "test_error", "message": plan.message}}
                return JSONResponse(error, status_code=plan.status, headers=plan.headers)
            if body.get("stream"):
                return _sse(_anthropic_events(body, plan), named=True, delay=plan.chunk_delay)
            return JSONResponse(_anthropic_message(body, plan))

        return app

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Upstream]:
        async with serving(self.app, self.port):
            yield self


def _refused(body: dict[str, Any], quirks: Quirks) -> Response | None:
    """The answer of a quirky server to a request it cannot take, before any plan is used."""
    null_content = any(
        m.get("role") == "assistant" and m.get("tool_calls") and m.get("content") is None
        for m in body.get("messages", [])
    )
    if quirks.refuses_null_content and null_content:
        error = {"error": {"message": NULL_CONTENT_REFUSAL, "type": "internal_server_error"}}
        return JSONResponse(error, status_code=500)
    if (
        quirks.drops_streamed_tool_choice
        and body.get("stream")
        and body.get("tool_choice") == "auto"
    ):
        return StreamingResponse(iter(()), media_type="text/event-stream")
    return None


def _sse(
    events: Iterator[tuple[str, dict[str, Any] | str]], *, named: bool, delay: float
) -> Response:
    async def render() -> AsyncIterator[str]:
        for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            yield (f"event: {name}\n" if named else "") + f"data: {text}\n\n"
            if delay:
                await asyncio.sleep(delay)

    return StreamingResponse(render(), media_type="text/event-stream")


def _pieces(text: str) -> list[str]:
    """Text as a model streams it: a word (with its space) at a time."""
    words = text.split(" ")
    return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]


# --- OpenAI ----------------------------------------------------------------------------------


def _openai_usage(plan: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.prompt_tokens + plan.output_tokens,
        "completion_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
    }


def _openai_logprobs(body: dict[str, Any], plan: Reply) -> dict[str, Any] | None:
    if not body.get("logprobs"):
        return None
    return {
        "content": [
            {"token": piece, "logprob": -0.5 * (i + 1), "bytes": None, "top_logprobs": []}
            for i, piece in enumerate(_pieces(plan.text))
        ]
    }


def _openai_completion(body: dict[str, Any], plan: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.text or None}
    if plan.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(plan.tool_calls)
        ]
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": "tool_calls" if plan.tool_calls else "stop",
        "logprobs": _openai_logprobs(body, plan),
    }
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [choice],
        "usage": _openai_usage(plan),
    }


def _openai_chunks(
    body: dict[str, Any], plan: Reply, *, usage: bool = True
) -> Iterator[tuple[str, dict[str, Any] | str]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[str, dict[str, Any]]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return "", {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body["model"],
            "choices": [choice],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(plan.text) if plan.text else []:
        yield chunk({"content": piece})
    for i, (name, arguments) in enumerate(plan.tool_calls):
        opening = {"index": i, "id": f"call_{i}", "type": "function"}
        yield chunk({"tool_calls": [{**opening, "function": {"name": name, "arguments": ""}}]})
        half = len(arguments) // 2
        for part in (arguments[:half], arguments[half:]):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
    yield chunk({}, "tool_calls" if plan.tool_calls else "stop")
    if not usage:
        yield "", "[DONE]"
        return
    usage_chunk = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": body["model"],
        "choices": [],
        "usage": _openai_usage(plan),
    }
    yield "", usage_chunk
    yield "", "[DONE]"


# --- Anthropic -------------------------------------------------------------------------------


def _anthropic_blocks(plan: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": plan.text}] if plan.text else []
    for i, (name, arguments) in enumerate(plan.tool_calls):
        blocks.append(
            {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": json.loads(arguments)}
        )
    return blocks


def _anthropic_message(body: dict[str, Any], plan: Reply) -> dict[str, Any]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": _anthropic_blocks(plan),
        "stop_reason": "tool_use" if plan.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": plan.prompt_tokens, "output_tokens": plan.output_tokens},
    }


def _anthropic_events(
    body: dict[str, Any], plan: Reply
) -> Iterator[tuple[str, dict[str, Any] | str]]:
    start = {**_anthropic_message(body, plan), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": plan.prompt_tokens, "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(_anthropic_blocks(plan)):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        else:
            opening = {**block, "input": {}}
            text = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": text}]
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": opening,
            },
        )
        for delta in deltas:
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    stop = "tool_use" if plan.tool_calls else "end_turn"
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": plan.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}
