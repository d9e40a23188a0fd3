"""Agent configs as callers write them: `.agent` files (YAML front matter, then a template
of <system>, <user> and <assistant> blocks) and templates with `{{variable}}` inputs."""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import ValidationError

from api.services.errors import Invalid
from loopline.models import AgentKernel, ChatMessage

FRONTMATTER = re.compile(r"\A\s*---[ \t]*\n(.*?)\n---[ \t]*\n?(.*)\Z", re.DOTALL)
TEMPLATE_TAG = re.compile(r"<(system|user|assistant)>\s*(.*?)\s*</\1>", re.DOTALL)
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
WHERE = ["body", "agent"]


def parse_agent_file(text: str) -> AgentKernel:
    match = FRONTMATTER.match(text)
    if match is None:
        raise Invalid(WHERE, "a .agent file starts with '---', its YAML config, then '---'")
    try:
        config = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise Invalid(WHERE, f"bad YAML front matter: {error}") from None
    if not isinstance(config, dict):
        raise Invalid(WHERE, "the front matter must be a YAML mapping")
    config["tools"] = [
        tool if isinstance(tool, dict) and "json_schema" in tool else {"json_schema": tool}
        for tool in config.get("tools") or []
    ]
    blocks = TEMPLATE_TAG.findall(match.group(2))
    if blocks:
        config["template"] = [{"role": role, "content": content} for role, content in blocks]
    elif match.group(2).strip():
        config["template"] = match.group(2).strip()
    try:
        return AgentKernel.model_validate(config)
    except ValidationError as error:
        item = error.errors()[0]
        where = ".".join(str(part) for part in item["loc"])
        raise Invalid([*WHERE, *item["loc"]], f"{where}: {item['msg']}") from None


def render(message: ChatMessage, inputs: dict[str, Any]) -> ChatMessage:
    """The message with each `{{name}}` replaced by that input."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in inputs:
            raise Invalid(["body", "inputs", name], f"the agent's template needs input {name!r}")
        return str(inputs[name])

    return message.model_copy(update={"content": VARIABLE.sub(value, message.content or "")})


def template_messages(kernel: AgentKernel, inputs: dict[str, Any]) -> list[ChatMessage]:
    template = kernel.template or []
    if isinstance(template, str):
        template = [ChatMessage(role="system", content=template)]
    return [render(message, inputs) for message in template]


def transcript(conversation: list[ChatMessage]) -> str:
    """The run's prompt: a lone user message as it is, a longer conversation as a transcript."""
    if len(conversation) == 1 and conversation[0].role == "user":
        return conversation[0].content or ""
    return "\n\n".join(f"{m.role.title()}: {m.content or ''}" for m in conversation)


def template_inputs(config: dict[str, Any]) -> list[str]:
    """The names of the inputs an agent's template takes, in the order they first appear."""
    template = config.get("template") or []
    texts = [template] if isinstance(template, str) else [m.get("content") for m in template]
    names = [m.group(1) for text in texts if isinstance(text, str) for m in VARIABLE.finditer(text)]
    return list(dict.fromkeys(names))
