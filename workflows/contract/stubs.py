"""Every activity a workflow calls, by name and payload types.

Workflows call activities through these stubs, so a workflow module imports no activity
code (and with it no provider SDK or database driver). The activities in `activities/`
register under the same names with the same types; tests/workflows/test_contract.py checks
that every stub has its implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from workflows.contract.payloads import (
    AgentStepInput,
    AgentStepResult,
    BatchEnd,
    ClientStepInput,
    EvaluateInput,
    EvaluateResult,
    ModelStepResult,
    RelayMessage,
    RolloutPage,
    RunInput,
    RunRef,
    StatusChange,
    StepRef,
    TeardownInput,
    ToolCallInput,
    ToolCallResult,
    ToolResultsInput,
    UserMessagesInput,
    UserTurnRef,
    UserTurnResult,
)

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
NoneType = type(None)


@dataclass(frozen=True)
class ActivityStub(Generic[InputT, OutputT]):
    """An activity's name with the type of its one argument and of its result."""

    name: str
    input_type: type[InputT]
    result_type: type[OutputT]


SETUP = ActivityStub("setup", RunInput, NoneType)
TEARDOWN = ActivityStub("teardown", TeardownInput, NoneType)
MODEL_STEP = ActivityStub("model_step", StepRef, ModelStepResult)
# A model step with an in-process environment's tool calls: one activity per step.
AGENT_STEP = ActivityStub("agent_step", AgentStepInput, AgentStepResult)
USER_TURN = ActivityStub("user_turn", UserTurnRef, UserTurnResult)
CALL_TOOL = ActivityStub("call_tool", ToolCallInput, ToolCallResult)
RECORD_STATUS = ActivityStub("record_status", StatusChange, NoneType)
RECORD_USER_MESSAGES = ActivityStub("record_user_messages", UserMessagesInput, NoneType)
RECORD_TOOL_RESULTS = ActivityStub("record_tool_results", ToolResultsInput, NoneType)
RECORD_CLIENT_STEP = ActivityStub("record_client_step", ClientStepInput, NoneType)
JUDGE = ActivityStub("judge", RunRef, NoneType)
EVALUATE = ActivityStub("evaluate", EvaluateInput, EvaluateResult)
DELIVER_CALLBACK = ActivityStub("deliver_callback", RunRef, NoneType)
BATCH_ROLLOUTS = ActivityStub("batch_rollouts", RolloutPage, list[RunInput])
BATCH_STATUS = ActivityStub("batch_status", BatchEnd, NoneType)
RELAY_MESSAGE = ActivityStub("relay_message", RelayMessage, int)

STUBS: tuple[ActivityStub[Any, Any], ...] = (
    SETUP,
    TEARDOWN,
    MODEL_STEP,
    AGENT_STEP,
    USER_TURN,
    CALL_TOOL,
    RECORD_STATUS,
    RECORD_USER_MESSAGES,
    RECORD_TOOL_RESULTS,
    JUDGE,
    EVALUATE,
    DELIVER_CALLBACK,
    BATCH_ROLLOUTS,
    BATCH_STATUS,
    RELAY_MESSAGE,
)
# Activities of a provider's model calls, on that provider's rate-limited task queue.
MODEL_CALL_STUBS = (MODEL_STEP, AGENT_STEP, USER_TURN, JUDGE)
