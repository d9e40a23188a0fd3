"""The contract between workflows, activities and the API: activity stubs, payload models,
policies and names (README: Architecture). It loads pydantic and the Temporal SDK, nothing
else, so that importing a workflow loads no provider SDK, database driver or MCP client."""

from workflows.contract import names, payloads, policies, stubs
from workflows.contract.policies import ActivityPolicy
from workflows.contract.stubs import ActivityStub

__all__ = ["ActivityPolicy", "ActivityStub", "names", "payloads", "policies", "stubs"]
