"""The names workflows, activities and the API agree on: workflow types and ids, signals,
updates and queries, the types of update refusals, task queues, search attributes, the keys
events are recorded under, and the idempotency keys that reach tools.

Changing any of these breaks histories already recorded (tests/workflows/test_replay.py)
or runs the trace store already holds.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from loopline.models import RunStatus
from workflows.contract.payloads import RunInput

# --- workflows -------------------------------------------------------------------------------

RUN_WORKFLOW = "Run"
BATCH_WORKFLOW = "Batch"
RELAY_WORKFLOW = "RelayWorkflow"

RUN_WORKFLOW_PREFIX = "run-"
BATCH_WORKFLOW_PREFIX = "batch-"


def run_workflow_id(run_id: str) -> str:
    return f"{RUN_WORKFLOW_PREFIX}{run_id}"


def run_id_of(workflow_id: str) -> str | None:
    """The run a workflow id belongs to; None for other workflows (batches)."""
    if workflow_id.startswith(RUN_WORKFLOW_PREFIX):
        return workflow_id.removeprefix(RUN_WORKFLOW_PREFIX)
    return None


def batch_workflow_id(batch_id: str) -> str:
    return f"{BATCH_WORKFLOW_PREFIX}{batch_id}"


def relay_workflow_id(run_id: str, message_id: str) -> str:
    return f"relay-{run_id}-{message_id}"


# Which row a workflow execution was started for: a run or batch id may be used again once
# its row is deleted, while Temporal still keeps the closed workflow of the old one.
INCARNATION_MEMO = "loopline_incarnation"

# Signals, updates and queries of the run workflow; the batch workflow's cancel and progress.
CANCEL_SIGNAL = "cancel"
CLOSE_SIGNAL = "close"
USER_MESSAGE_UPDATE = "user_message"
CONTINUE_UPDATE = "continue"
# An agent that runs in the caller (an MCP session) sends these.
CLIENT_READY_UPDATE = "client_ready"
CLIENT_TOOL_CALL_UPDATE = "client_tool_call"
CLIENT_ANSWER_UPDATE = "client_answer"
STATE_QUERY = "state"
PROGRESS_QUERY = "progress"

# Types of update refusals; the API turns them into 409 and 422 answers.
NOT_ACCEPTING = "NotAcceptingMessages"
NOT_AWAITING = "NotAwaitingInput"
NOT_CLIENT_AGENT = "AgentNotInClient"
TOO_MANY_STEPS = "MaxStepsReached"
WRONG_TOOL_CALLS = "WrongToolCalls"
RUN_FAILED = "RunFailed"

# Patches (workflow.patched): histories recorded before a change replay as they ran.
ANSWER_UPDATES_FIRST_PATCH = "answer-updates-before-local-model-steps"
ONE_ACTIVITY_STEP_PATCH = "model-and-in-process-tools-in-one-activity"
LOCAL_LIFECYCLE_PATCH = "in-process-lifecycle-as-local-activities"
LOCAL_FAILURE_PATCH = "a-local-activitys-failure-fails-the-run-with-teardown"


def model_queue(task_queue: str, provider: str) -> str:
    """The task queue of one provider's model calls, where its rate limit applies."""
    return f"{task_queue}-model-{provider}"


# --- search attributes -----------------------------------------------------------------------

ENVIRONMENT = SearchAttributeKey.for_keyword("LooplineEnvironment")
SCENARIO = SearchAttributeKey.for_keyword("LooplineScenario")
MODEL = SearchAttributeKey.for_keyword("LooplineModel")
STATUS = SearchAttributeKey.for_keyword("LooplineStatus")
REWARD = SearchAttributeKey.for_float("LooplineReward")
BATCH = SearchAttributeKey.for_keyword("LooplineBatch")
TASKSET = SearchAttributeKey.for_keyword("LooplineTaskset")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str] | SearchAttributeKey[float], ...] = (
    ENVIRONMENT,
    SCENARIO,
    MODEL,
    STATUS,
    REWARD,
    BATCH,
    TASKSET,
)


def initial_search_attributes(run: RunInput) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(ENVIRONMENT, run.environment),
        SearchAttributePair(SCENARIO, run.scenario),
        SearchAttributePair(MODEL, run.model),
        SearchAttributePair(STATUS, RunStatus.running.value),
    ]
    if run.batch_id is not None:
        pairs.append(SearchAttributePair(BATCH, run.batch_id))
    if run.taskset_id is not None:
        pairs.append(SearchAttributePair(TASKSET, run.taskset_id))
    return TypedSearchAttributes(pairs)


def batch_search_attributes(batch_id: str, taskset_id: str | None) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(BATCH, batch_id)]
    if taskset_id is not None:
        pairs.append(SearchAttributePair(TASKSET, taskset_id))
    return TypedSearchAttributes(pairs)


# --- event keys: every event of a run is recorded once under its key -------------------------

SETUP_KEY = "setup"
SYSTEM_PROMPT_KEY = "setup:system"
PERSONA_KEY = "setup:persona"
# The tools a run with remote tools was offered, listed once at setup.
REMOTE_TOOLS_KEY = "setup:tools"
EVALUATE_KEY = "evaluate"
TEARDOWN_KEY = "teardown"


def model_key(step: int) -> str:
    return f"step-{step}:model"


def summary_key(step: int) -> str:
    return f"step-{step}:summary"


def tool_key(step: int, call_id: str) -> str:
    return f"step-{step}:tool:{call_id}"


def user_key(step: int) -> str:
    """The simulated user's reply after the agent's answer at `step`."""
    return f"step-{step}:user"


def message_key(message_id: str) -> str:
    return f"message:{message_id}"


def evaluator_key(evaluator: str) -> str:
    return f"evaluate:{evaluator}"


def callback_key(attempt: int) -> str:
    return f"callback:{attempt}"


def awaiting_key(step: int) -> str:
    return f"step-{step}:awaiting"


def resumed_key(step: int) -> str:
    return f"step-{step}:resumed"


def idle_key(turn: int) -> str:
    return f"turn-{turn}:idle"


def turn_running_key(turn: int) -> str:
    return f"turn-{turn}:running"


# --- idempotency keys that leave Loopline ----------------------------------------------------


def tool_idempotency_key(run_id: str, step: int, call_id: str) -> str:
    """The key a tool call carries to the tool (in-process or on its server): the same for
    every retry of the call, so a tool can drop a duplicate."""
    return f"{run_id}:{step}:{call_id}"


def lifecycle_idempotency_key(run_id: str, event_key: str) -> str:
    """The key of a remote environment's setup, evaluate or teardown call."""
    return f"{run_id}:{event_key}"
