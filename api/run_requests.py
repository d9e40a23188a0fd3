"""A run request checked and resolved into what the workers need, or told what to fix."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from api.errors import InvalidRequestError
from loopline.environment import Scenario
from loopline.extras import missing_extra
from loopline.models import (
    ModelConfig,
    Provider,
    RunRequest,
    RunSpec,
    Script,
    parse_model,
)
from loopline.registry import Registry

ANTHROPIC_FAMILY = frozenset({Provider.anthropic, Provider.aws_bedrock, Provider.gcp})
SCRIPT_EXAMPLE = (
    '{"steps": [{"tool_calls": [{"name": "...", "arguments": {}}]}, {"content": "..."}]}'
)


@dataclass(frozen=True)
class ResolvedRun:
    spec: RunSpec
    secrets: dict[str, str]  # keys by part ("model", "user_model"); sealed before storing


def resolve(request: RunRequest, registry: Registry) -> ResolvedRun:
    scenario = _scenario(request, registry)
    _check_client_tools(request, registry)
    if request.session and request.user_model is not None:
        raise InvalidRequestError(
            ["body", "session"],
            "a session takes its user messages from you; drop user_model (a simulated user) "
            "or session",
        )
    llm = _model(request.model, "model", request.script, "script")
    user_llm = None
    if request.user_model is not None:
        user_llm = _model(request.user_model, "user_model", request.user_script, "user_script")
    secrets = {
        part: key
        for part, config in (("model", llm), ("user_model", user_llm))
        if config is not None and (key := _api_key(request, config)) is not None
    }
    spec = RunSpec(
        environment=request.environment,
        scenario=request.scenario,
        args=_args(request, scenario),
        model=llm.label,
        llm=llm.without_secret(),
        script=request.script,
        user_llm=user_llm.without_secret() if user_llm else None,
        user_script=request.user_script,
        max_user_turns=request.max_user_turns if user_llm else 0,
        client_tools=[tool.info() for tool in request.client_tools],
        session=request.session,
        max_steps=llm.max_steps or request.max_steps,
    )
    return ResolvedRun(spec=spec, secrets=secrets)


def _scenario(request: RunRequest, registry: Registry) -> Scenario:
    try:
        registry.environment(request.environment)
    except LookupError as error:
        raise InvalidRequestError(["body", "environment"], str(error)) from error
    try:
        return registry.scenario(request.environment, request.scenario)
    except LookupError as error:
        raise InvalidRequestError(["body", "scenario"], str(error)) from error


def _check_client_tools(request: RunRequest, registry: Registry) -> None:
    server_side = registry.environment(request.environment).tools
    seen: set[str] = set()
    for index, tool in enumerate(request.client_tools):
        where: list[str | int] = ["body", "client_tools", index]
        if tool.name in server_side:
            raise InvalidRequestError(
                [*where, "name"],
                f"environment {request.environment!r} already has a tool {tool.name!r}; "
                "give the client-side tool another name",
            )
        if tool.name in seen:
            raise InvalidRequestError(
                [*where, "name"], f"client tool {tool.name!r} is declared twice"
            )
        seen.add(tool.name)
        if tool.parameters.get("type") != "object":
            raise InvalidRequestError(
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
        raise InvalidRequestError(["body", field], str(error)) from error
    if config.provider is Provider.scripted and script is None:
        raise InvalidRequestError(
            ["body", script_field],
            f"model 'scripted' plays the script sent with the run: add "
            f'"{script_field}": {SCRIPT_EXAMPLE}',
        )
    problem = _problem(config)
    if problem is not None:
        raise InvalidRequestError(["body", field], problem)
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


def _args(request: RunRequest, scenario: Scenario) -> dict[str, object]:
    try:
        return scenario.validate_args(request.args)
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidRequestError(
            ["body", "args", *first["loc"]],
            f"bad args for scenario {request.scenario!r}: {first['msg']} "
            f"(at {'.'.join(str(p) for p in first['loc']) or 'args'}); "
            f"expected schema: {json.dumps(scenario.info().args_schema)}",
        ) from error
