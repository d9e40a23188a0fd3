"""A run request checked and resolved into what the workers need, or told what to fix."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from api.services.errors import Invalid
from loopline.environment.registry import Registry
from loopline.environment.remote import RESERVED_TOOLS, RemoteEnvironment
from loopline.environment.scenarios import Scenario
from loopline.environment.schemas import schema_problem
from loopline.extras import missing_extra
from loopline.models import (
    BARE_MODELS,
    MAX_ARGS_BYTES,
    CallbackConfig,
    CallbackSpec,
    EvaluationSpec,
    ModelConfig,
    Provider,
    RemoteCallPolicy,
    RunRequest,
    RunSpec,
    Script,
    parse_model,
)
from loopline.outbound import OutboundPolicy
from loopline.secrets import CALLBACK_HEADERS, CALLBACK_SIGNING_SECRET
from workflows.contract.names import model_queue
from workflows.contract.payloads import RunInput

ANTHROPIC_FAMILY = frozenset({Provider.anthropic, Provider.aws_bedrock, Provider.gcp})
SCRIPT_EXAMPLE = (
    '{"steps": [{"tool_calls": [{"name": "...", "arguments": {}}]}, {"content": "..."}]}'
)


@dataclass(frozen=True)
class ResolvedRun:
    spec: RunSpec
    secrets: dict[str, str]  # keys by part ("model", "user_model", "judge"); sealed
    callback_secrets: dict[str, str]  # the callback's headers and signing secret; sealed


def resolve(request: RunRequest, registry: Registry) -> ResolvedRun:
    remote = _remote(request, registry)
    args = _args(request, registry, remote)
    _check_client_tools(request, registry, remote)
    if request.session and request.user_model is not None:
        raise Invalid(
            ["body", "session"],
            "a session takes its user messages from you; drop user_model (a simulated user) "
            "or session",
        )
    llm = _model(request.model, "model", request.script, "script")
    user_llm = None
    if request.user_model is not None:
        user_llm = _model(request.user_model, "user_model", request.user_script, "user_script")
    if remote is None and llm.tool_server_url is None:
        # Remote tools are listed at setup, which checks these lists against them.
        _check_tool_lists(request, registry)
    judge = _judge(request, llm)
    _check_destinations(request, registry.outbound, llm, user_llm)
    secrets = {
        part: key
        for part, config in (("model", llm), ("user_model", user_llm), ("judge", judge))
        if config is not None and (key := _api_key(request, config)) is not None
    }
    spec = RunSpec(
        environment=request.environment,
        scenario=request.scenario,
        args=args,
        model=llm.label,
        llm=llm.without_secret(),
        script=request.script,
        user_llm=user_llm.without_secret() if user_llm else None,
        user_script=request.user_script,
        max_user_turns=request.max_user_turns if user_llm else 0,
        client_tools=[tool.info() for tool in request.client_tools],
        session=request.session,
        max_steps=llm.max_steps or request.max_steps,
        prompt=request.prompt,
        include_tools=request.include_tools,
        exclude_tools=request.exclude_tools,
        evaluation=EvaluationSpec(
            validation=request.evaluation.validation,
            rubric=request.evaluation.rubric,
            judge=judge.without_secret() if judge else None,
            judge_script=request.evaluation.judge_script,
            weights=request.evaluation.weights,
        ),
        callback=_callback(request.callback),
        metadata=request.metadata,
        tags=request.tags,
        remote=_call_policy(remote, llm),
    )
    return ResolvedRun(spec=spec, secrets=secrets, callback_secrets=_callback_secrets(request))


def run_input(
    run_id: str, spec: RunSpec, request: RunRequest, history_limit: int, task_queue: str
) -> RunInput:
    """What the run's workflow starts with: names and limits, nothing secret."""
    user_llm = spec.user_llm
    judge = spec.evaluation.judge
    return RunInput(
        run_id=run_id,
        environment=spec.environment,
        scenario=spec.scenario,
        model=spec.model,
        max_steps=spec.max_steps,
        max_duration_seconds=request.max_duration_seconds,
        model_is_local=spec.llm.provider is Provider.scripted,
        user_model=user_llm.label if user_llm else None,
        user_model_is_local=user_llm is None or user_llm.provider is Provider.scripted,
        max_user_turns=spec.max_user_turns,
        client_tools=[tool.name for tool in spec.client_tools],
        input_timeout_seconds=request.input_timeout_seconds,
        session=spec.session,
        idle_timeout_seconds=request.idle_timeout_seconds if spec.session else None,
        continue_as_new_after_events=history_limit,
        judge_model=judge.label if judge and spec.evaluation.rubric is not None else None,
        judge_model_is_local=judge is None or judge.provider is Provider.scripted,
        callback_retry_count=spec.callback.retry_count if spec.callback else None,
        batch_id=spec.batch_id,
        taskset_id=spec.taskset_id,
        model_queue_prefix=model_queue(task_queue, ""),
        remote=spec.remote,
        # A script that repeats a call does so on purpose (load tests, long sessions).
        max_repeated_tool_calls=0
        if spec.llm.provider in BARE_MODELS
        else spec.llm.max_repeated_tool_calls,
        agent_is_client=spec.llm.provider is Provider.client,
    )


def _check_destinations(
    request: RunRequest, outbound: OutboundPolicy, llm: ModelConfig, user_llm: ModelConfig | None
) -> None:
    """The URLs the run will send to, checked against the outbound URL policy now (a name
    is checked again on the address it resolves to, when the request is made)."""
    judge = request.evaluation.judge_model
    named: list[tuple[list[str | int], str | None]] = [
        (["body", "callback", "url"], request.callback.url if request.callback else None),
        (["body", "model", "base_url"], llm.base_url),
        (["body", "model", "tool_server_url"], llm.tool_server_url),
        (["body", "user_model", "base_url"], user_llm.base_url if user_llm else None),
        (
            ["body", "evaluation", "judge_model", "base_url"],
            judge.base_url if isinstance(judge, ModelConfig) else None,
        ),
    ]
    for loc, url in named:
        refusal = outbound.check_url(url) if url else None
        if refusal is not None:
            raise Invalid(loc, f"{url} is blocked by the outbound URL policy: {refusal}")


def _remote(request: RunRequest, registry: Registry) -> RemoteEnvironment | None:
    try:
        return registry.remote(request.environment)
    except LookupError as error:
        raise Invalid(["body", "environment"], str(error)) from error


def _call_policy(remote: RemoteEnvironment | None, llm: ModelConfig) -> RemoteCallPolicy | None:
    """How the run's remote calls are timed and retried: its environment's settings, or
    the defaults for a local environment whose tools are on a tool server."""
    if remote is not None:
        return remote.policy
    if llm.tool_server_url is not None:
        return RemoteCallPolicy()
    return None


def _check_tool_lists(request: RunRequest, registry: Registry) -> None:
    environment = registry.environment(request.environment)
    known = set(environment.tools)
    lists = {"include_tools": request.include_tools or [], "exclude_tools": request.exclude_tools}
    for field, names in lists.items():
        unknown = sorted(set(names) - known)
        if unknown:
            raise Invalid(
                ["body", field],
                f"environment {request.environment!r} has no tool {', '.join(unknown)}; "
                f"its tools: {', '.join(sorted(known)) or 'none'}",
            )
    callable_tools = known | {tool.name for tool in request.client_tools}
    for index, call in enumerate(request.evaluation.validation):
        if call.name not in callable_tools:
            raise Invalid(
                ["body", "evaluation", "validation", index, "name"],
                f"validation expects a call of {call.name!r}, which the agent cannot call; "
                f"its tools: {', '.join(sorted(callable_tools)) or 'none'}",
            )


def _judge(request: RunRequest, llm: ModelConfig) -> ModelConfig | None:
    """The model that judges the rubric: the one asked for, or the run's own."""
    evaluation = request.evaluation
    if evaluation.rubric is None:
        return None
    if evaluation.judge_model is None:
        if llm.provider is Provider.client:
            raise Invalid(
                ["body", "evaluation", "judge_model"],
                "the agent of this run is the client, which cannot judge its own rubric: "
                "set evaluation.judge_model (e.g. 'openai/gpt-4o-mini')",
            )
        if llm.provider is Provider.scripted and evaluation.judge_script is None:
            raise Invalid(
                ["body", "evaluation", "judge_script"],
                "the rubric would be judged by the run's model, 'scripted', which needs "
                "evaluation.judge_script: a script whose answer is the verdict, e.g. "
                '{"score": 1, "passed": true, "reasoning": "..."}; or set evaluation.judge_model',
            )
        return llm
    field = ["evaluation", "judge_model"]
    config = _model(
        evaluation.judge_model, ".".join(field), evaluation.judge_script, "judge_script"
    )
    return config


def _callback(callback: CallbackConfig | None) -> CallbackSpec | None:
    if callback is None:
        return None
    return CallbackSpec.model_validate(callback.model_dump(exclude={"headers", "secret"}))


def _callback_secrets(request: RunRequest) -> dict[str, str]:
    callback = request.callback
    if callback is None:
        return {}
    sealed = {CALLBACK_HEADERS: json.dumps(callback.headers or {})}
    if callback.secret is not None:
        sealed[CALLBACK_SIGNING_SECRET] = callback.secret.get_secret_value()
    return sealed


def _scenario(request: RunRequest, registry: Registry) -> Scenario:
    try:
        return registry.scenario(request.environment, request.scenario)
    except LookupError as error:
        raise Invalid(["body", "scenario"], str(error)) from error


def _check_client_tools(
    request: RunRequest, registry: Registry, remote: RemoteEnvironment | None
) -> None:
    server_side = (
        set(RESERVED_TOOLS) if remote else set(registry.environment(request.environment).tools)
    )
    seen: set[str] = set()
    for index, tool in enumerate(request.client_tools):
        where: list[str | int] = ["body", "client_tools", index]
        if tool.name in server_side:
            raise Invalid(
                [*where, "name"],
                f"environment {request.environment!r} already has a tool {tool.name!r}; "
                "give the client-side tool another name",
            )
        if tool.name in seen:
            raise Invalid([*where, "name"], f"client tool {tool.name!r} is declared twice")
        seen.add(tool.name)
        if tool.parameters.get("type") != "object":
            raise Invalid(
                [*where, "parameters"],
                'parameters must be a JSON schema of an object, e.g. {"type": "object", '
                '"properties": {"path": {"type": "string"}}, "required": ["path"]}',
            )


def _model(
    value: str | ModelConfig, field: str, script: Script | None, script_field: str
) -> ModelConfig:
    try:
        config = parse_model(value)
    except ValueError as error:
        raise Invalid(["body", field], str(error)) from error
    if config.provider is Provider.client and field != "model":
        raise Invalid(
            ["body", field],
            f"{field} cannot be 'client': only the run's own agent may run in the client",
        )
    if config.provider is Provider.scripted and script is None:
        raise Invalid(
            ["body", script_field],
            f"model 'scripted' plays the script sent with the run: add "
            f'"{script_field}": {SCRIPT_EXAMPLE}',
        )
    problem = _problem(config)
    if problem is not None:
        raise Invalid(["body", field], problem)
    return config


def _problem(config: ModelConfig) -> str | None:
    provider = config.provider
    if provider in {Provider.custom, Provider.azure_openai} and not config.base_url:
        return (
            f"provider {provider.value!r} needs base_url (the OpenAI-compatible server, "
            "e.g. http://localhost:8000/v1); for api.openai.com use provider 'openai'"
        )
    if provider in ANTHROPIC_FAMILY and (config.temperature or 0.0) > 1.0:
        return f"provider {provider.value!r} accepts temperature 0.0-1.0, not {config.temperature}"
    if provider in ANTHROPIC_FAMILY and config.log_prob:
        return f"provider {provider.value!r} does not return log-probabilities; drop log_prob"
    return missing_extra(provider)


def _api_key(request: RunRequest, config: ModelConfig) -> str | None:
    key = config.api_key or request.provider_api_keys.get(config.provider)
    return key.get_secret_value() if key is not None else None


def _args(
    request: RunRequest, registry: Registry, remote: RemoteEnvironment | None
) -> dict[str, object]:
    size = len(json.dumps(request.args))
    if size > MAX_ARGS_BYTES:
        raise Invalid(
            ["body", "args"],
            f"args are {size:,} bytes of JSON, over the limit of {MAX_ARGS_BYTES:,}: pass "
            "large inputs as something the scenario fetches (a URL, a path), not as args",
        )
    if remote is not None:
        return _remote_args(request, remote)
    scenario = _scenario(request, registry)
    try:
        return scenario.validate_args(request.args)
    except ValidationError as error:
        first = error.errors()[0]
        raise Invalid(
            ["body", "args", *first["loc"]],
            f"bad args for scenario {request.scenario!r}: {first['msg']} "
            f"(at {'.'.join(str(p) for p in first['loc']) or 'args'}); "
            f"expected schema: {json.dumps(scenario.info().args_schema)}",
        ) from error


def _remote_args(request: RunRequest, remote: RemoteEnvironment) -> dict[str, object]:
    """Args of a remote scenario, checked against its declared schema (when declared)."""
    try:
        declared = remote.scenario(request.scenario)
    except LookupError as error:
        raise Invalid(["body", "scenario"], str(error)) from error
    if declared is None:
        return request.args
    problem = schema_problem(declared.args_schema, request.args)
    if problem is not None:
        raise Invalid(
            ["body", "args"],
            f"bad args for scenario {request.scenario!r}: {problem}; "
            f"expected schema: {json.dumps(declared.args_schema)}",
        )
    return request.args
