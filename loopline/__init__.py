"""Loopline: durable LLM agent runs on Temporal.

The public surface for environment authors is re-exported here.
"""

from loopline.environment import Environment, Outcome, Reward, Setup, ToolContext, ToolError

__all__ = ["Environment", "Outcome", "Reward", "Setup", "ToolContext", "ToolError"]
