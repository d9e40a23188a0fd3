"""Runs made from recorded runs: replays (the recorded model turns against the code deployed
now) and forks (a recorded run's first steps, then another model or script), and the report
of what a replay changed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from loopline.models.config import ModelConfig, Provider
from loopline.models.conversation import MAX_STEPS_LIMIT, RUN_ID_PATTERN, Script

MIN_REPLAY_ID_CHARS = 8


class OriginKind(StrEnum):
    replay = "replay"
    fork = "fork"


class RunOrigin(BaseModel):
    """The recorded run a run was made from."""

    kind: OriginKind
    run_id: str = Field(description="The recorded (parent) run.")
    step: int = Field(
        description="The parent's model steps the run plays as recorded: all of them for a "
        "replay, the fork point for a fork."
    )


class ReplayRequest(BaseModel):
    """Body of `POST /v1/runs/{run_id}/replay`."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        min_length=MIN_REPLAY_ID_CHARS,
        description="Client-chosen id of the replay; the same id and body again return it. "
        "At least 8 characters: the report reads the replay's id in tool results and state "
        "as its parent's, which a shorter id could also match in other text.",
    )
    wait: bool = Field(
        default=True, description="Wait (up to `timeout`) for the replay to end and report."
    )
    timeout: int = Field(default=120, ge=1, le=600, description="Seconds to wait.")


class ForkRequest(BaseModel):
    """Body of `POST /v1/runs/{run_id}/forks`."""

    model_config = ConfigDict(extra="forbid")

    step: int = Field(
        ge=0,
        le=MAX_STEPS_LIMIT,
        description="The parent's model steps (with their tool calls) replayed before the "
        "new model takes over; 0: none.",
    )
    run_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Client-chosen id of the fork (of the first, with `rollouts`).",
    )
    rollouts: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Forks of the same step, started together (ids `{run_id}-{k}` when "
        "run_id is given).",
    )
    model: str | ModelConfig | None = Field(
        default=None, description="The model after the fork point; unset: the parent's."
    )
    provider_api_keys: dict[Provider, SecretStr] = Field(default_factory=dict)
    script: Script | None = Field(
        default=None,
        description="For model 'scripted': what it says after the fork point (its first "
        "step is step `step + 1`).",
    )
    prompt: str | None = Field(
        default=None, max_length=100_000, description="Replaces the parent's prompt."
    )
    max_steps: int | None = Field(
        default=None, ge=1, le=MAX_STEPS_LIMIT, description="Unset: the parent's."
    )
    tags: list[str] = Field(default_factory=list, max_length=50)


class ToolDifference(BaseModel):
    """A tool call whose result or state change differs from the parent's."""

    step: int
    call_id: str
    tool: str
    field: str = Field(description="content, is_error, state_changes, or missing")
    recorded: Any = None
    replayed: Any = None


class ValueChange(BaseModel):
    recorded: Any = None
    replayed: Any = None


class ReplayReport(BaseModel):
    """What the replay (or the replayed steps of a fork) did differently from its parent."""

    run_id: str
    origin: RunOrigin
    status: str
    ended: bool = Field(description="False: the run has not ended; the report is partial.")
    same: bool = Field(
        description="No difference in tool results, state changes, final state, reward, "
        "evaluator scores, answer or stop reason."
    )
    compared_steps: int
    tools: list[ToolDifference] = Field(default_factory=list)
    state: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Paths of the final environment state that differ (replays only).",
    )
    reward: ValueChange | None = Field(default=None, description="Set when the reward changed.")
    evaluations: dict[str, ValueChange] = Field(
        default_factory=dict, description="Evaluators whose score changed, by name."
    )
    answer: ValueChange | None = None
    stop_reason: ValueChange | None = None
    notes: list[str] = Field(default_factory=list, description="What the replay could not redo.")
