"""Tools from what users already have: callables with their JSON schemas (OpenAI, MCP or
bare), parameter descriptions from docstrings, state found by its class's bases."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from loopline import Environment, Setup, ToolContext, ToolError
from loopline.environment import ToolSchemaError

CONTEXT = ToolContext(run_id="r", step=1, call_id="c")
SEARCH_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for."},
        "limit": {"type": "integer", "minimum": 1},
    },
    "required": ["query"],
    "additionalProperties": False,
}


class Store(BaseModel):
    items: list[str] = []


class Shop(Store):
    """The environment's state; tools may name it or its base class."""


class Note(BaseModel):
    text: str


def search(store: Store, query: str, limit: int = 2) -> list[str]:
    return [item for item in store.items if query in item][:limit]


async def test_an_openai_tool_is_shown_verbatim_and_called_with_checked_arguments() -> None:
    env = Environment("shop", state=Shop)
    openai_tool = {
        "type": "function",
        "function": {"name": "find", "description": "Find items.", "parameters": SEARCH_PARAMETERS},
    }
    tool = env.add_tool(search, openai_tool)

    info = tool.info()
    assert (info.name, info.description) == ("find", "Find items.")
    assert info.parameters == SEARCH_PARAMETERS
    shop = Shop(items=["red hat", "red cap", "red box"])
    assert await tool.invoke({"query": "red", "limit": 1}, shop, CONTEXT) == '["red hat"]'
    with pytest.raises(ToolError, match="invalid arguments for find: limit: 0 is less than"):
        await tool.invoke({"query": "red", "limit": 0}, shop, CONTEXT)
    with pytest.raises(ToolError, match="'query' is a required property"):
        await tool.invoke({}, shop, CONTEXT)


async def test_an_mcp_tool_and_a_bare_schema_take_names_from_the_function_or_keywords() -> None:
    env = Environment("shop", state=Shop)
    loose = {"type": "object", "properties": {"query": {"type": "string"}}}

    def count(query: str, shop: Shop | None, context: Annotated[ToolContext, "injected"]) -> str:
        """Count matching items."""
        assert shop is not None
        return f"{sum(query in item for item in shop.items)} at {context.idempotency_key}"

    mcp = env.add_tool(count, {"name": "count", "description": "How many.", "inputSchema": loose})
    bare = env.add_tool(count, loose, name="tally")

    assert mcp.info().parameters == loose and mcp.info().description == "How many."
    assert (bare.name, bare.description) == ("tally", "Count matching items.")
    shop = Shop(items=["red hat", "blue cap"])
    assert await bare.invoke({"query": "red"}, shop, CONTEXT) == "1 at r:1:c"
    with pytest.raises(ToolError, match="unknown arguments colour; tally takes: query"):
        await bare.invoke({"query": "red", "colour": "red"}, shop, CONTEXT)


def test_schemas_that_cannot_be_used_are_refused_at_registration() -> None:
    env = Environment("shop", state=Shop)
    env.add_tool(search, SEARCH_PARAMETERS)
    refused: list[tuple[str, dict[str, Any], str | None]] = [
        ("already has a tool 'search'", SEARCH_PARAMETERS, None),
        (
            "not a valid JSON schema at properties/query",
            {"type": "object", "properties": {"query": {"type": "text"}}},
            "other",
        ),
        ('must have "type": "object"', {"type": "string"}, "other"),
        (
            "named 'other' but its schema names it 'find'",
            {"name": "find", "inputSchema": SEARCH_PARAMETERS},
            "other",
        ),
        (
            "properties its function cannot take: colour",
            {"type": "object", "properties": {"query": {}, "colour": {}}},
            "other",
        ),
        (
            "properties its function cannot take: store",
            {"type": "object", "properties": {"query": {}, "store": {}}},
            "other",
        ),
        (
            "needs query, which its schema does not have",
            {"type": "object", "properties": {"limit": {}}},
            "other",
        ),
    ]
    for says, schema, name in refused:
        with pytest.raises(ToolSchemaError, match=says):
            env.add_tool(search, schema, name=name)


GOOGLE = """Move stock between shelves.

Checks both shelves first.

Args:
    source: The shelf it leaves.
    target (str): The shelf it goes to.
    count: How many; at least one.

Returns:
    The new stock of the target.
"""
NUMPY = """Move stock between shelves.

Checks both shelves first.

Parameters
----------
source : str
    The shelf it leaves.
target : str
    The shelf it goes to.
count : int
    How many; at least one.
"""
REST = """Move stock between shelves.

Checks both shelves first.

:param source: The shelf it leaves.
:param target: The shelf it goes to.
:param count: How many; at least one.
:raises ValueError: for an unknown shelf.
"""


@pytest.mark.parametrize("docstring", [GOOGLE, NUMPY, REST], ids=["google", "numpy", "rest"])
def test_parameter_descriptions_come_from_the_docstring(docstring: str) -> None:
    env = Environment("shelves")

    def move(
        source: str, target: str, count: Annotated[int, Field(description="Items moved.")]
    ) -> int:
        return count

    move.__doc__ = docstring
    info = env.add_tool(move).info()

    assert info.description == "Move stock between shelves.\n\nChecks both shelves first."
    described = {name: p.get("description") for name, p in info.parameters["properties"].items()}
    # An annotation's own description wins over the docstring's.
    assert described == {
        "source": "The shelf it leaves.",
        "target": "The shelf it goes to.",
        "count": "Items moved.",
    }


def test_scenario_args_are_described_by_the_docstring_too() -> None:
    env = Environment("shelves")

    @env.scenario
    def restock(shelf: str) -> Setup:
        """Restock a shelf.

        Args:
            shelf: The shelf to fill.
        """
        return Setup(prompt=f"fill {shelf}")

    info = restock.info()
    assert info.description == "Restock a shelf."
    assert info.args_schema["properties"]["shelf"]["description"] == "The shelf to fill."


async def test_state_reaches_parameters_annotated_with_a_base_class_optional_or_annotated() -> None:
    env = Environment("shop", state=Shop)

    @env.tool
    def first(store: Store) -> str:
        return store.items[0]

    @env.tool
    def second(shop: Shop | None = None) -> str:
        assert shop is not None
        return shop.items[1]

    @env.tool
    def both(shop: Annotated[Shop, "the run's"], context: ToolContext | None) -> str:
        assert context is not None
        return f"{len(shop.items)} {context.call_id}"

    shop = Shop(items=["hat", "cap"])
    for name in ("first", "second", "both"):
        assert env.tools[name].info().parameters.get("properties", {}) == {}
    assert [await env.tools[n].invoke({}, shop, CONTEXT) for n in env.tools] == [
        "hat",
        "cap",
        "2 c",
    ]


def test_a_generic_model_parameter_is_the_models_and_two_state_parameters_are_refused() -> None:
    env = Environment("shop", state=Shop)

    @env.tool
    def annotate(shop: Shop, note: Note, extra: BaseModel | None = None) -> str:
        return note.text

    shown = env.tools["annotate"].info().parameters["properties"]
    assert set(shown) == {"note", "extra"}
    with pytest.raises(ToolSchemaError, match="shop, store would all receive the state"):

        @env.tool
        def twice(shop: Shop, store: Store) -> str:
            return ""
