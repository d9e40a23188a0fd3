"""A recorded run read back as what replaying it needs: its model turns as a script, the
user turns, and each tool call's result, keyed by step and call id for comparison."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopline.environment.changes import state_changes
from loopline.models import EventType, EventView, Message, Script, ScriptedStep, ScriptedToolCall
from loopline.models.conversation import STOP_MARKER
from loopline.models.lineage import ToolDifference

COMPARED_FIELDS = ("content", "is_error", "state_changes")


@dataclass(frozen=True)
class ToolOutcome:
    step: int
    call_id: str
    tool: str
    values: dict[str, Any]


@dataclass
class Recording:
    """A run's conversation in the order it was recorded: the model's turns, what a
    simulated user said after the prompt (as its script says it), each tool call's result."""

    turns: list[ScriptedStep] = field(default_factory=list)
    prompted: bool = False
    user_turns: list[ScriptedStep] = field(default_factory=list)
    tools: dict[tuple[int, str], ToolOutcome] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.turns)

    def called_tools(self) -> set[str]:
        return {call.name for turn in self.turns for call in turn.tool_calls}

    def script(self, steps: int | None = None) -> Script | None:
        """The first `steps` turns (all by default) as a script; None when there are none."""
        turns = self.turns if steps is None else self.turns[:steps]
        return Script(steps=turns) if turns else None

    def answered_at(self) -> int | None:
        """The step whose turn is the final answer (no tool calls), if the run has one."""
        if self.turns and not self.turns[-1].tool_calls:
            return self.steps
        return None


def read_recording(events: list[EventView]) -> Recording:
    """The recording of a run from its message and log events, oldest first."""
    recording = Recording()
    names: dict[str, str] = {}
    for event in events:
        if event.type is EventType.log:
            _note_user_log(recording, event)
            continue
        message = Message.model_validate(event.data)
        if message.role == "user":
            _note_user(recording, message.content, bool(event.data.get("done")))
        elif message.role == "assistant":
            recording.turns.append(_turn(message))
            names.update((call.id, call.name) for call in message.tool_calls)
        elif message.role == "tool" and message.tool_call_id is not None:
            step = recording.steps
            values = {name: event.data.get(name) for name in COMPARED_FIELDS}
            tool = names.get(message.tool_call_id, message.name or "")
            outcome = ToolOutcome(step, message.tool_call_id, tool, values)
            recording.tools[(step, message.tool_call_id)] = outcome
    return recording


def _note_user(recording: Recording, content: str, done: bool) -> None:
    if not recording.prompted:
        recording.prompted = True
        return
    said = f"{content} {STOP_MARKER}" if done else content
    recording.user_turns.append(ScriptedStep(content=said))


def _note_user_log(recording: Recording, event: EventView) -> None:
    """A simulated user's bare "done" is recorded as a log line, not a message."""
    if event.data.get("role") == "user" and event.data.get("done"):
        recording.user_turns.append(ScriptedStep(content=STOP_MARKER))


def _turn(message: Message) -> ScriptedStep:
    return ScriptedStep(
        content=message.content,
        tool_calls=[
            ScriptedToolCall(id=call.id, name=call.name, arguments=call.arguments)
            for call in message.tool_calls
        ],
    )


def as_parent(value: Any, run_id: str, parent_id: str) -> Any:
    """`value` with the run's id written as its parent's: what tools derive from the run id
    (idempotency keys, say) is not a difference a replay should report."""
    if isinstance(value, str):
        return value.replace(run_id, parent_id)
    if isinstance(value, list):
        return [as_parent(item, run_id, parent_id) for item in value]
    if isinstance(value, dict):
        return {key: as_parent(item, run_id, parent_id) for key, item in value.items()}
    return value


def tool_differences(
    recorded: Recording, replayed: Recording, steps: int, ids: tuple[str, str]
) -> list[ToolDifference]:
    """Tool calls of the first `steps` steps whose result or state change differ; `ids`
    are the replayed run's id and its parent's."""
    differences: list[ToolDifference] = []
    for key, before in recorded.tools.items():
        if key[0] > steps:
            continue
        after = replayed.tools.get(key)
        if after is None:
            differences.append(
                ToolDifference(
                    step=before.step, call_id=before.call_id, tool=before.tool, field="missing"
                )
            )
            continue
        values = as_parent(after.values, *ids)
        differences.extend(
            ToolDifference(
                step=before.step,
                call_id=before.call_id,
                tool=before.tool,
                field=name,
                recorded=before.values[name],
                replayed=values[name],
            )
            for name in COMPARED_FIELDS
            if before.values[name] != values[name]
        )
    return differences


def state_differences(
    recorded: dict[str, Any] | None, replayed: dict[str, Any] | None
) -> list[dict[str, Any]]:
    changes = state_changes(recorded, replayed)
    if changes is None:
        return []
    listed = [change.model_dump(mode="json") for change in changes.changes]
    if changes.omitted:
        listed.append({"omitted": changes.omitted})
    return listed
