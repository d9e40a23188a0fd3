"""The lines of a training export (`GET /v1/exports`): one JSON object per run, as OpenAI
chat fine-tuning takes it (`openai-chat`) or with the run's rewards and log-probabilities
for reinforcement learning (`rl`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from loopline.models.conversation import RunStatus, StopReason, TokenLogprob, Usage
from loopline.models.records import EvaluatorResult


class ExportFormat(StrEnum):
    openai_chat = "openai-chat"
    rl = "rl"


class FineTuneFunctionCall(BaseModel):
    name: str
    arguments: str = Field(
        description="The arguments as JSON text; the model's own text when it was not a "
        "JSON object."
    )


class FineTuneToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FineTuneFunctionCall


class ExportMessage(BaseModel):
    """A chat message as OpenAI's chat completions take it; unset fields are left out."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = Field(
        default=None, description="Left out of an assistant message that only calls tools."
    )
    tool_calls: list[FineTuneToolCall] | None = None
    tool_call_id: str | None = Field(default=None, description="A tool message's call.")


class FineTuneMessage(ExportMessage):
    weight: Literal[0, 1] | None = Field(
        default=None,
        description="0 on an assistant message whose tool arguments were not a JSON object: "
        "kept as context, not trained on. Left out elsewhere (trained on).",
    )


class FineTuneFunction(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="The tool's JSON schema.")


class FineTuneTool(BaseModel):
    type: Literal["function"] = "function"
    function: FineTuneFunction


class FineTuneExample(BaseModel):
    """A line of `format=openai-chat`: one run's conversation and the tools it was offered."""

    messages: list[FineTuneMessage]
    tools: list[FineTuneTool]
    parallel_tool_calls: bool | None = Field(
        default=None,
        description="False when the run's model was told not to call tools in parallel; "
        "left out otherwise.",
    )


class RlMessage(ExportMessage):
    logprobs: list[TokenLogprob] | None = Field(
        default=None,
        description="An assistant message's token log-probabilities, where its model "
        "config had `log_prob: true` and the provider returned them.",
    )


class RlEpisode(BaseModel):
    """A line of `format=rl`: one run as an episode to learn from."""

    run_id: str
    created_at: datetime
    status: RunStatus
    environment: str
    scenario: str
    args: dict[str, Any]
    model: str = Field(description="The model as the run was started.")
    batch_id: str | None = None
    taskset_id: str | None = None
    task: str | None = Field(default=None, description="The slug of the task it ran.")
    rollout: int | None = None
    messages: list[RlMessage] = Field(
        description="The conversation in the chat format of `openai-chat`, each assistant "
        "message with its log-probabilities where recorded."
    )
    tools: list[FineTuneTool]
    reward: float | None = Field(
        description="The final reward: Loopline scores an episode once, at its end."
    )
    success: bool | None = None
    evaluations: list[EvaluatorResult] | None = Field(
        default=None, description="What each evaluator scored, that the reward combines."
    )
    steps: int = Field(description="Model steps taken.")
    stop_reason: StopReason | None = None
    usage: Usage
