"""The SDK for writing environments: typed tools, scenarios with setup and evaluation.

An environment's state is a pydantic model. Loopline keeps it in the trace store between
activities, so a worker restart between setup, any tool call and evaluation loses nothing.
Beside the SDK: `registry` (the environments a process serves), `remote` (environments on
MCP or HTTP tool servers) and `toolservers` (the clients of those servers).
"""

from loopline.environment.definition import Environment
from loopline.environment.scenarios import Outcome, Reward, Setup
from loopline.environment.schemas import ToolSchemaError
from loopline.environment.tools import ToolContext, ToolError

__all__ = [
    "Environment",
    "Outcome",
    "Reward",
    "Setup",
    "ToolContext",
    "ToolError",
    "ToolSchemaError",
]
