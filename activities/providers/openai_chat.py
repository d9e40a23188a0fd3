"""OpenAI Chat Completions, also for Azure OpenAI and any OpenAI-compatible server."""

from __future__ import annotations

import json
import os
from typing import Any

import openai
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion

from activities.providers.base import Ask, Completion
from activities.providers.errors import describe
from loopline.models import (
    Message,
    ModelConfig,
    NamedToolChoice,
    Provider,
    TokenLogprob,
    ToolCall,
    ToolInfo,
    Usage,
)
from loopline.outbound import OutboundPolicy

AZURE_API_VERSION = "2024-10-21"
# Self-hosted OpenAI-compatible servers (vLLM, Ollama, llama.cpp) mostly need no key, but
# the SDK refuses to build a client without one.
NO_KEY = "no-key-required"


class EmptyStreamError(RuntimeError):
    """A streamed answer with no chunk at all (llama.cpp's, when it cannot stream)."""


class OpenAIChat:
    def __init__(self, config: ModelConfig, api_key: str | None, outbound: OutboundPolicy) -> None:
        self._config = config
        self._client = _client(config, api_key, outbound)
        # Set once the server failed a streamed call with tools: later ones are not streamed.
        self._tools_unstreamable: str | None = None

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, ask: Ask) -> Completion:
        request = self._request(await ask.conversation(), ask.tools)
        if not self._config.stream:
            return _completion(await self._client.chat.completions.create(**request))
        if ask.tools and self._tools_unstreamable is not None:
            return await self._unstreamed(request, self._tools_unstreamable)
        try:
            return await self._streamed(request, ask)
        except Exception as error:
            if not ask.tools or not _may_be_streaming(error):
                raise
            # llama.cpp's function calling, for one, cannot stream a tool choice and answers
            # with an empty stream: the same request unstreamed tells whether that was all.
            reason = describe(error)[:300]
            try:
                completion = await self._unstreamed(request, reason)
            except openai.APIConnectionError:
                # The server may have closed the failed stream's connection while it sat
                # in the pool: once more, on a new one.
                completion = await self._unstreamed(request, reason)
            self._tools_unstreamable = reason
            return completion

    async def _streamed(self, request: dict[str, Any], ask: Ask) -> Completion:
        state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
        stream = await self._client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        chunks = 0
        async with stream:
            async for chunk in stream:
                chunks += 1
                state.handle_chunk(chunk)
                if ask.on_text and chunk.choices and chunk.choices[0].delta.content:
                    ask.on_text(chunk.choices[0].delta.content)
        if not chunks:
            raise EmptyStreamError("the server's stream ended before its first chunk")
        return _completion(state.get_final_completion())

    async def _unstreamed(self, request: dict[str, Any], reason: str) -> Completion:
        completion = _completion(await self._client.chat.completions.create(**request))
        note = f"not streamed: the server failed to stream a call with tools ({reason})"
        return completion.model_copy(update={"note": note})

    def _request(self, messages: list[Message], tools: list[ToolInfo]) -> dict[str, Any]:
        config = self._config
        request: dict[str, Any] = {
            "model": config.model,
            "messages": [_to_openai(message, config.provider) for message in messages],
        }
        if config.temperature is not None:
            request["temperature"] = config.temperature
        if tools:
            request["tools"] = [_tool(tool) for tool in tools]
            if (choice := _tool_choice(config)) is not None:
                request["tool_choice"] = choice
            if config.parallel_tool_calls is not None:
                request["parallel_tool_calls"] = config.parallel_tool_calls
        if config.max_tokens is not None:
            # OpenAI's reasoning models only take the newer name; compatible servers the older.
            limit = "max_tokens" if config.provider is Provider.custom else "max_completion_tokens"
            request[limit] = config.max_tokens
        if config.log_prob:
            request["logprobs"] = True
        return request


def _client(
    config: ModelConfig, api_key: str | None, outbound: OutboundPolicy
) -> openai.AsyncOpenAI:
    common: dict[str, Any] = {
        "max_retries": 0,
        "timeout": config.timeout_seconds,
        "http_client": openai.DefaultAsyncHttpxClient(transport=outbound.transport2()),
    }
    if config.provider is Provider.azure_openai:
        return openai.AsyncAzureOpenAI(
            api_key=api_key,
            azure_endpoint=config.base_url or "",
            api_version=config.api_version or AZURE_API_VERSION,
            **common,
        )
    if api_key is None and config.provider is Provider.custom:
        api_key = os.environ.get("OPENAI_API_KEY") or NO_KEY
    return openai.AsyncOpenAI(api_key=api_key, base_url=config.base_url, **common)


def _tool(tool: ToolInfo) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _tool_choice(config: ModelConfig) -> str | dict[str, Any] | None:
    choice = config.tool_choice
    if isinstance(choice, NamedToolChoice):
        return {"type": "function", "function": {"name": choice.name}}
    if choice is None and config.provider is Provider.custom:
        return "auto"
    return choice


def _may_be_streaming(error: Exception) -> bool:
    """Whether a failed streamed call may have failed for being streamed: not a timeout, nor
    a refusal of the key, the model or the rate, which an unstreamed call would get too."""
    if "Timeout" in type(error).__name__:
        return False
    status = getattr(error, "status_code", None)
    return status is None or status not in {401, 403, 404, 408, 409, 429}


def _to_openai(message: Message, provider: Provider) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        # OpenAI documents null beside tool calls; servers such as llama.cpp's refuse it.
        empty = "" if provider is Provider.custom else None
        return {
            "role": "assistant",
            "content": message.content or empty,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments_text(call)},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _arguments_text(call: ToolCall) -> str:
    if call.invalid_arguments is not None:
        return call.invalid_arguments
    return json.dumps(call.arguments)


def _completion(response: ChatCompletion) -> Completion:
    choice = response.choices[0]
    calls = [
        _tool_call(call.id, call.function.name, call.function.arguments)
        for call in choice.message.tool_calls or []
        if call.type == "function"
    ]
    usage = Usage(model_calls=1, unreported_calls=1)
    if response.usage is not None:
        details = response.usage.completion_tokens_details
        usage = Usage(
            model_calls=1,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            reasoning_tokens=(details.reasoning_tokens or 0) if details else 0,
        )
    logprobs = None
    if choice.logprobs is not None and choice.logprobs.content is not None:
        logprobs = [
            TokenLogprob(token=item.token, logprob=item.logprob) for item in choice.logprobs.content
        ]
    return Completion(
        message=Message(role="assistant", content=choice.message.content or "", tool_calls=calls),
        usage=usage,
        finish_reason=choice.finish_reason,
        logprobs=logprobs,
    )


def _tool_call(call_id: str, name: str, arguments: str) -> ToolCall:
    """A tool call whose argument text is not a JSON object is kept, marked, for the model."""
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        return ToolCall(id=call_id, name=name, invalid_arguments=arguments)
    return ToolCall(id=call_id, name=name, arguments=parsed)
