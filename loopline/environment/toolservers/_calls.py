"""What every tool server is asked and answers, whatever its protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from loopline.models import ToolInfo

META_RUN_ID = "loopline/run_id"
META_IDEMPOTENCY_KEY = "loopline/idempotency_key"
META_SESSION = "loopline/session"


@dataclass(frozen=True)
class CallMeta:
    """Sent with every call: a server drops a duplicate by `idempotency_key` (a retry after
    a worker died mid-call repeats it) and finds the run's state by `session`."""

    run_id: str
    idempotency_key: str
    session: str | None = None

    def as_mcp_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            META_RUN_ID: self.run_id,
            META_IDEMPOTENCY_KEY: self.idempotency_key,
        }
        if self.session is not None:
            meta[META_SESSION] = self.session
        return meta


@dataclass(frozen=True)
class CallOutcome:
    text: str
    is_error: bool
    structured: dict[str, Any] | None = None

    def as_object(self) -> dict[str, Any] | None:
        """The result as a JSON object: structured content, or text that parses as one.

        MCP servers wrap a result that is no object as `{"result": value}`."""
        structured = self.structured
        if structured is not None and set(structured) == {"result"}:
            structured = structured["result"] if isinstance(structured["result"], dict) else None
        if structured is not None:
            return structured
        try:
            value = json.loads(self.text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class ToolServer(Protocol):
    async def list_tools(self) -> list[ToolInfo]: ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any], meta: CallMeta
    ) -> CallOutcome: ...

    async def aclose(self) -> None: ...
