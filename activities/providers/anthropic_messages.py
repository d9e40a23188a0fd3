"""Anthropic Messages API, also through AWS Bedrock and Google Vertex AI."""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic.types import Message as AnthropicMessage

from activities.providers.base import Ask, Completion
from loopline.models import (
    Message,
    ModelConfig,
    NamedToolChoice,
    Provider,
    ToolCall,
    ToolInfo,
    Usage,
)
from loopline.outbound import OutboundPolicy

DEFAULT_MAX_TOKENS = 4096
AnthropicClient = (
    anthropic.AsyncAnthropic | anthropic.AsyncAnthropicBedrock | anthropic.AsyncAnthropicVertex
)


ANTHROPIC_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}


class AnthropicMessages:
    def __init__(self, config: ModelConfig, api_key: str | None, outbound: OutboundPolicy) -> None:
        self._config = config
        self._client = _client(config, api_key, outbound)

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, ask: Ask) -> Completion:
        request = self._request(await ask.conversation(), ask.tools)
        if not self._config.stream:
            return _completion(await self._client.messages.create(**request))
        async with self._client.messages.stream(**request) as stream:
            async for text in stream.text_stream:
                if ask.on_text:
                    ask.on_text(text)
            return _completion(await stream.get_final_message())

    def _request(self, messages: list[Message], tools: list[ToolInfo]) -> dict[str, Any]:
        config = self._config
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        request: dict[str, Any] = {
            "model": config.model,
            "messages": _to_anthropic([m for m in messages if m.role != "system"]),
            "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if config.temperature is not None:
            # Newer SDKs dropped the parameter (newer models fix it); older models take it.
            request["extra_body"] = {"temperature": config.temperature}
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
            if (choice := _tool_choice(config)) is not None:
                request["tool_choice"] = choice
        return request


def _tool_choice(config: ModelConfig) -> dict[str, Any] | None:
    """The config's tool choice in Anthropic's terms, which carry the parallel setting."""
    choice = config.tool_choice
    if isinstance(choice, NamedToolChoice):
        answer: dict[str, Any] = {"type": "tool", "name": choice.name}
    elif choice is None:
        if config.parallel_tool_calls is None:
            return None
        answer = {"type": "auto"}
    else:
        answer = {"type": ANTHROPIC_TOOL_CHOICE[choice]}
    if config.parallel_tool_calls is False and answer["type"] != "none":
        answer["disable_parallel_tool_use"] = True
    return answer


def _client(config: ModelConfig, api_key: str | None, outbound: OutboundPolicy) -> AnthropicClient:
    common: dict[str, Any] = {
        "max_retries": 0,
        "timeout": config.timeout_seconds,
        "http_client": anthropic.DefaultAsyncHttpxClient(transport=outbound.transport2()),
    }
    if config.base_url:
        common["base_url"] = config.base_url
    if config.provider is Provider.aws_bedrock:
        return anthropic.AsyncAnthropicBedrock(aws_region=config.region, **common)
    if config.provider is Provider.gcp:
        # Unset region and project come from CLOUD_ML_REGION and the Google credentials.
        if config.region:
            common["region"] = config.region
        if config.project_id:
            common["project_id"] = config.project_id
        return anthropic.AsyncAnthropicVertex(**common)
    return anthropic.AsyncAnthropic(api_key=api_key, **common)


def _to_anthropic(messages: list[Message]) -> list[dict[str, Any]]:
    """Normalised messages as Anthropic turns: tool results ride in the next user turn, and
    consecutive turns of one role are merged, as the API requires alternation."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
                "is_error": message.is_error,
            }
        ]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        arguments = {} if call.invalid_arguments is not None else call.arguments
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _completion(response: AnthropicMessage) -> Completion:
    text = "".join(block.text for block in response.content if block.type == "text")
    calls = [
        _tool_call(block.id, block.name, block.input)
        for block in response.content
        if block.type == "tool_use"
    ]
    return Completion(
        message=Message(role="assistant", content=text, tool_calls=calls),
        usage=Usage(
            model_calls=1,
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
        ),
        finish_reason=response.stop_reason,
    )


def _tool_call(call_id: str, name: str, arguments: object) -> ToolCall:
    if not isinstance(arguments, dict):
        return ToolCall(id=call_id, name=name, invalid_arguments=str(arguments))
    return ToolCall(id=call_id, name=name, arguments=arguments)
