"""Training exports: the project's runs that pass a filter, one JSON line per run, as OpenAI
chat fine-tuning takes them or as RL episodes (loopline/models/exports.py).

The runs are read a page at a time (loopline/store/exports.py) and each page is written
out before the next is read, so an export of any size holds one page in memory.

What a line holds, and why:
- messages: the run's message events (system, user, assistant, tool), all of them. A run
  whose context was summarised (`summarize_every_n_turns`) is exported whole: summaries
  were the model's shortened view of it, not turns of the episode.
- tools: what the model was offered. Steps do not record it, so it is worked out as the
  model step does: an in-process environment's tools as deployed now, under the run's
  include/exclude lists; a remote environment's tools as listed at the run's setup; then
  the run's client-side tools. An environment no longer deployed contributes none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from api.services.access import Access, Caller
from api.services.errors import Invalid, NotFound
from api.services.runs import RunListing, checked_listing
from loopline.environment.registry import Registry
from loopline.models import Message, RunStatus, Scope, TokenLogprob, ToolCall, ToolInfo
from loopline.models.exports import (
    ExportFormat,
    FineTuneExample,
    FineTuneFunction,
    FineTuneFunctionCall,
    FineTuneMessage,
    FineTuneTool,
    FineTuneToolCall,
    RlEpisode,
    RlMessage,
)
from loopline.models.records import EvaluatorResult
from loopline.store import TasksetStore
from loopline.store.exports import ExportedRun, ExportFilter, ExportStore
from loopline.store.trace import RunFilter

# Runs per read: a few hundred keeps a page's messages to a few MB and the reads few.
PAGE_SIZE = 200


@dataclass(frozen=True)
class ExportRequest:
    """What to export; `taskset` is a taskset's id or name."""

    format: ExportFormat = ExportFormat.openai_chat
    batch_id: str | None = None
    taskset: str | None = None
    environment: str | None = None
    scenario: str | None = None
    model: str | None = None
    min_reward: float | None = None
    success: bool | None = None
    status: RunStatus = RunStatus.completed


@dataclass
class ExportService:
    store: ExportStore
    access: Access
    tasksets: TasksetStore
    registry: Registry
    page_size: int = PAGE_SIZE

    async def export(self, caller: Caller, request: ExportRequest) -> AsyncIterator[str]:
        """The lines of the export, a page of runs per item, oldest run first. The filter
        is checked here, before the first line is sent."""
        project = self.access.project(caller, Scope.task_read)
        where = await self._filter(caller, project, request)
        return self._pages(where, request.format)

    async def _filter(self, caller: Caller, project: str, request: ExportRequest) -> ExportFilter:
        listing = checked_listing(
            RunListing(
                environment=request.environment,
                scenario=request.scenario,
                model=request.model,
                batch_id=request.batch_id,
                min_reward=request.min_reward,
            )
        )
        if request.batch_id is not None:
            await self._check_batch(caller, request.batch_id)
        taskset_id = await self._taskset_id(project, request.taskset)
        runs = RunFilter(
            project=project,
            environment=listing.environment,
            scenario=listing.scenario,
            model=listing.model,
            batch_id=listing.batch_id,
            taskset_id=taskset_id,
            min_reward=listing.min_reward,
            status=request.status,
        )
        return ExportFilter(runs=runs, success=request.success)

    async def _check_batch(self, caller: Caller, batch_id: str) -> None:
        try:
            await self.access.batch(caller, batch_id, Scope.task_read)
        except NotFound as error:
            raise Invalid(["query", "batch_id"], f"{error.message} in this project") from error

    async def _taskset_id(self, project: str, ref: str | None) -> str | None:
        if ref is None:
            return None
        try:
            return (await self.tasksets.taskset(ref, project)).taskset_id
        except LookupError as error:
            raise Invalid(
                ["query", "taskset"], f"no taskset has the id or name {ref!r} in this project"
            ) from error

    async def _pages(self, where: ExportFilter, format_: ExportFormat) -> AsyncIterator[str]:
        offered = OfferedTools(self.registry)
        line = chat_line if format_ is ExportFormat.openai_chat else rl_line
        after = None
        while True:
            page = await self.store.page(where, after, self.page_size)
            # A page's lines take tens of ms to build: off the event loop, the API answers
            # other requests meanwhile.
            text = await asyncio.to_thread(_page_text, page.runs, line, offered)
            if text:
                yield text
            if page.after is None:
                return
            after = page.after


@dataclass
class OfferedTools:
    """The tools a run's model was offered (see the module's docstring), each environment's
    read once per export."""

    registry: Registry
    _environments: dict[str, dict[str, FineTuneTool]] = field(default_factory=dict)

    def of(self, run: ExportedRun) -> list[FineTuneTool]:
        spec = run.spec
        if run.listed_tools is not None:
            environment = [_tool(ToolInfo.model_validate(tool)) for tool in run.listed_tools]
        elif spec.remote is not None:
            environment = []  # its setup failed before the tools were listed
        else:
            tools = self._deployed(spec.environment)
            environment = [tool for name, tool in tools.items() if spec.offers(name)]
        return [*environment, *(_tool(tool) for tool in spec.client_tools)]

    def _deployed(self, name: str) -> dict[str, FineTuneTool]:
        if name not in self._environments:
            try:
                tools = self.registry.environment(name).tools
            except LookupError:
                tools = {}
            self._environments[name] = {key: _tool(tool.info()) for key, tool in tools.items()}
        return self._environments[name]


def _page_text(
    runs: list[ExportedRun],
    line: Callable[[ExportedRun, list[FineTuneTool]], str | None],
    offered: OfferedTools,
) -> str:
    lines = (line(run, offered.of(run)) for run in runs)
    return "".join(f"{item}\n" for item in lines if item is not None)


def chat_line(run: ExportedRun, tools: list[FineTuneTool]) -> str | None:
    """The run as an OpenAI chat fine-tuning example; None for a run the model never
    answered in (fine-tuning refuses an example without an assistant message)."""
    messages = [_fine_tune_message(Message.model_validate(data)) for data in run.messages]
    if not any(message.role == "assistant" for message in messages):
        return None
    parallel = run.spec.llm.parallel_tool_calls
    example = FineTuneExample(
        messages=messages, tools=tools, parallel_tool_calls=False if parallel is False else None
    )
    return example.model_dump_json(exclude_none=True)


def rl_line(run: ExportedRun, tools: list[FineTuneTool]) -> str | None:
    """The run as an RL episode; None for a run without a model turn (one that ended before
    its first, or whose messages its caller asked not to keep)."""
    if not any(data.get("role") == "assistant" for data in run.messages):
        return None
    spec = run.spec
    episode = RlEpisode(
        run_id=run.run_id,
        created_at=run.created_at,
        status=run.status,
        environment=spec.environment,
        scenario=spec.scenario,
        args=spec.args,
        model=run.model,
        batch_id=spec.batch_id,
        taskset_id=spec.taskset_id,
        task=spec.task,
        rollout=spec.rollout,
        messages=[_rl_message(data) for data in run.messages],
        tools=tools,
        reward=run.reward,
        success=run.success,
        evaluations=_evaluations(run),
        steps=run.steps,
        stop_reason=run.stop_reason,
        usage=run.usage,
    )
    return episode.model_dump_json(exclude_none=True)


def _fine_tune_message(message: Message) -> FineTuneMessage:
    untrainable = any(call.invalid_arguments is not None for call in message.tool_calls)
    return FineTuneMessage(**_chat_fields(message), weight=0 if untrainable else None)


def _rl_message(data: dict[str, Any]) -> RlMessage:
    logprobs = data.get("logprobs")
    return RlMessage(
        **_chat_fields(Message.model_validate(data)),
        logprobs=None if logprobs is None else [TokenLogprob.model_validate(p) for p in logprobs],
    )


def _chat_fields(message: Message) -> dict[str, Any]:
    calls = [
        FineTuneToolCall(
            id=call.id,
            function=FineTuneFunctionCall(name=call.name, arguments=_arguments_text(call)),
        )
        for call in message.tool_calls
    ]
    return {
        "role": message.role,
        # An assistant message that only calls tools says nothing.
        "content": None if calls and not message.content else message.content,
        "tool_calls": calls or None,
        "tool_call_id": message.tool_call_id if message.role == "tool" else None,
    }


def _arguments_text(call: ToolCall) -> str:
    if call.invalid_arguments is not None:
        return call.invalid_arguments
    return json.dumps(call.arguments)


def _evaluations(run: ExportedRun) -> list[EvaluatorResult] | None:
    if run.evaluations is None:
        return None
    return [EvaluatorResult.model_validate(item) for item in run.evaluations]


def _tool(info: ToolInfo) -> FineTuneTool:
    return FineTuneTool(
        function=FineTuneFunction(
            name=info.name, description=info.description, parameters=info.parameters
        )
    )
