"""MCP servers over streamable HTTP or a stdio subprocess, through the official SDK.

Each process keeps one connection per server: connecting costs a protocol handshake (and,
for stdio, starting a process), a call on an open connection about a millisecond. The SDK
ties a connection to the task that opened it, so a task of its own holds it open; calls
come from any task. A connection that broke is dropped and the next call opens another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import httpx2
from mcp import Client, MCPError
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
    CallToolResult,
    ContentBlock,
    RequestParamsMeta,
    TextContent,
)

from loopline.environment.toolservers import _errors as errors
from loopline.environment.toolservers._calls import CallMeta, CallOutcome
from loopline.models import ToolInfo
from loopline.outbound import OutboundPolicy, blocked_in

logger = logging.getLogger(__name__)
ResultT = TypeVar("ResultT")


class McpToolServer:
    def __init__(
        self,
        *,
        label: str,
        timeout: float,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        stdio: StdioServerParameters | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._label = label
        self._outbound = outbound or OutboundPolicy()
        self._timeout = timeout
        self._url = url
        self._headers = headers or {}
        self._stdio = stdio
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    async def list_tools(self) -> list[ToolInfo]:
        async def listing(client: Client) -> list[ToolInfo]:
            tools: list[ToolInfo] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(
                    ToolInfo(
                        name=tool.name,
                        description=tool.description or tool.title or tool.name,
                        parameters=tool.input_schema,
                    )
                    for tool in page.tools
                )
                cursor = page.next_cursor
                if cursor is None:
                    return tools

        return await self._on_connection(listing)

    async def call_tool(self, name: str, arguments: dict[str, Any], meta: CallMeta) -> CallOutcome:
        async def call(client: Client) -> CallOutcome:
            result = await client.call_tool(
                name, arguments, meta=cast(RequestParamsMeta, meta.as_mcp_meta())
            )
            return _outcome(result)

        return await self._on_connection(call)

    async def aclose(self) -> None:
        self._closing.set()
        if self._holder is not None:
            with contextlib.suppress(Exception):
                await self._holder

    async def _on_connection(self, use: Callable[[Client], Awaitable[ResultT]]) -> ResultT:
        try:
            async with asyncio.timeout(self._timeout):
                client = await self._connected()
                return await use(client)
        except errors.ToolServerError:
            raise
        except TimeoutError as error:
            await self._drop()
            raise errors.ServerTimedOut(
                f"{self._label} did not answer within {self._timeout:g} s"
            ) from error
        except MCPError as error:
            raise await self._classified(error) from error
        except Exception as error:
            await self._drop()
            if (blocked := blocked_in(error)) is not None:
                raise errors.ServerRefused(f"{self._label}: {blocked}") from error
            raise errors.ServerUnreachable(
                f"cannot reach {self._label}: {_describe(error)}"
            ) from error

    async def _classified(self, error: MCPError) -> errors.ToolServerError:
        if error.code == errors.SESSION_LOST_CODE:
            return errors.SessionLost(f"{self._label} lost the run's session: {error.message}")
        if error.code in {INVALID_PARAMS, METHOD_NOT_FOUND}:
            return errors.InvalidToolCall(error.message)
        if error.code == REQUEST_TIMEOUT:
            await self._drop()
            return errors.ServerTimedOut(f"{self._label} timed out: {error.message}")
        if error.code in {CONNECTION_CLOSED, INTERNAL_ERROR}:
            await self._drop()
            return errors.ServerUnreachable(f"{self._label} failed: {error.message}")
        return errors.ServerRefused(
            f"{self._label} refused the call ({error.code}): {error.message}"
        )

    async def _connected(self) -> Client:
        async with self._lock:
            if self._client is not None and self._holder is not None and not self._holder.done():
                return self._client
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._holder = asyncio.create_task(self._hold(ready))
            self._client = await ready
            return self._client

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        """Open the connection, hand it over, and keep it open until closing."""
        try:
            async with Client(self._transport(), read_timeout_seconds=self._timeout) as client:
                ready.set_result(client)
                await self._closing.wait()
        except BaseException as error:  # anyio raises groups; the waiting caller gets the leaf
            if not ready.done():
                ready.set_exception(_unwrapped(error))
            else:
                logger.info("connection to %s closed: %s", self._label, _describe(error))
        finally:
            self._client = None

    def _transport(self) -> Any:
        if self._stdio is not None:
            return self._stdio
        http = httpx2.AsyncClient(
            headers=self._headers,
            timeout=self._timeout,
            transport=self._outbound.transport2(),
            trust_env=False,
        )
        return streamable_http_client(self._url or "", http_client=http)

    async def _drop(self) -> None:
        """Close a connection that broke (or may have); the next call opens a new one."""
        holder, self._holder, self._client = self._holder, None, None
        if holder is not None and not holder.done():
            holder.cancel()
            with contextlib.suppress(BaseException):
                await holder


def _outcome(result: CallToolResult) -> CallOutcome:
    text = "\n".join(_text_of(block) for block in result.content)
    structured = result.structured_content
    if not text and structured is not None:
        text = str(structured)
    return CallOutcome(text=text, is_error=bool(result.is_error), structured=structured)


def _text_of(block: ContentBlock) -> str:
    if isinstance(block, TextContent):
        return block.text
    mime = getattr(block, "mime_type", None)
    return f"[{block.type} content{f' ({mime})' if mime else ''}]"


def _unwrapped(error: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio wraps transport errors in them)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _describe(error: BaseException) -> str:
    leaf = _unwrapped(error)
    return f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__
