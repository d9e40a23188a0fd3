"""JSON schemas of tool arguments: checking values against them, checking them, and reading
the tool formats users already have them in (OpenAI function tools, MCP tools)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for


class ToolSchemaError(ValueError):
    """A tool's schema cannot be used: not a JSON schema of an object, or it disagrees with
    the function it describes."""


@dataclass(frozen=True)
class ToolSchema:
    """What a tool format says: the argument schema and, when it has them, name and
    description."""

    parameters: dict[str, Any]
    name: str | None = None
    description: str | None = None


def schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    """What is wrong with `value` under a JSON schema, or None; a schema that is itself
    invalid checks nothing (the server is the judge then)."""
    try:
        validator_class = validator_for(schema)
        validator_class.check_schema(schema)
    except SchemaError:
        return None
    errors = sorted(validator_class(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.path) or "arguments"
        parts.append(f"{where}: {error.message}")
    return "; ".join(parts)


def read_tool_schema(schema: dict[str, Any]) -> ToolSchema:
    """The arguments schema of an OpenAI function tool (`{"type": "function", "function":
    {...}}`, or the flat Responses form), an MCP tool (`{"name", "inputSchema"}`) or a bare
    JSON schema; raises `ToolSchemaError` saying what to fix."""
    if not isinstance(schema, dict):
        raise ToolSchemaError(f"a tool schema is a JSON object, not {type(schema).__name__}")
    if schema.get("type") == "function":
        described = schema.get("function", schema)
        if not isinstance(described, dict):
            raise ToolSchemaError('an OpenAI tool\'s "function" must be an object')
        return _described(described, "parameters", "OpenAI")
    if "inputSchema" in schema:
        return _described(schema, "inputSchema", "MCP")
    return ToolSchema(parameters=_object_schema(schema, "the schema"))


def _described(tool: dict[str, Any], field: str, form: str) -> ToolSchema:
    parameters = tool.get(field, {"type": "object", "properties": {}})
    name, description = tool.get("name"), tool.get("description")
    if name is not None and not (isinstance(name, str) and name):
        raise ToolSchemaError(f'the {form} tool\'s "name" must be a non-empty string')
    if description is not None and not isinstance(description, str):
        raise ToolSchemaError(f'the {form} tool\'s "description" must be a string')
    return ToolSchema(
        parameters=_object_schema(parameters, f'the {form} tool\'s "{field}"'),
        name=name,
        description=description,
    )


def _object_schema(schema: Any, where: str) -> dict[str, Any]:
    """A deep copy of a valid JSON schema of an object (a tool is called with keywords)."""
    if not isinstance(schema, dict):
        raise ToolSchemaError(f"{where} must be a JSON schema object, not {type(schema).__name__}")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        at = "/".join(str(part) for part in error.path)
        raise ToolSchemaError(
            f"{where} is not a valid JSON schema{f' at {at}' if at else ''}: {error.message}"
        ) from None
    if schema.get("type") != "object":
        raise ToolSchemaError(
            f'{where} must have "type": "object" (a tool takes named arguments), '
            f"not {schema.get('type')!r}"
        )
    return copy.deepcopy(schema)
