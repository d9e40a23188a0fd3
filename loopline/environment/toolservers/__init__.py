"""Clients of the servers that remote environments run on: MCP (streamable HTTP, stdio)
and HTTP tool servers, behind one `ToolServer` interface and one error vocabulary."""

from __future__ import annotations

from collections import OrderedDict

from loopline.environment.toolservers._calls import (
    META_IDEMPOTENCY_KEY,
    META_RUN_ID,
    META_SESSION,
    CallMeta,
    CallOutcome,
    ToolServer,
)
from loopline.environment.toolservers._errors import (
    SESSION_LOST_CODE,
    InvalidToolCall,
    ServerRefused,
    ServerTimedOut,
    ServerUnreachable,
    SessionLost,
    ToolServerError,
)
from loopline.environment.toolservers._http import HttpToolServer
from loopline.models import RemoteEnvironmentConfig, RemoteTransport
from loopline.outbound import OutboundPolicy

__all__ = [
    "META_IDEMPOTENCY_KEY",
    "META_RUN_ID",
    "META_SESSION",
    "SESSION_LOST_CODE",
    "CallMeta",
    "CallOutcome",
    "InvalidToolCall",
    "ServerRefused",
    "ServerTimedOut",
    "ServerUnreachable",
    "SessionLost",
    "ToolServer",
    "ToolServerError",
    "ToolServers",
]

# Tool servers named by runs (tool_server_url) kept open at once; the oldest is closed.
MAX_URL_SERVERS = 64


class ToolServers:
    """The open tool servers of one process: one connection per server, reused by all runs."""

    def __init__(self, outbound: OutboundPolicy | None = None) -> None:
        # Without a policy of the process's settings, the strict default.
        self.outbound = outbound or OutboundPolicy()
        self._by_environment: dict[str, ToolServer] = {}
        self._by_url: OrderedDict[str, ToolServer] = OrderedDict()

    def for_environment(self, config: RemoteEnvironmentConfig) -> ToolServer:
        server = self._by_environment.get(config.name)
        if server is None:
            server = _open(config, self.outbound)
            self._by_environment[config.name] = server
        return server

    async def for_url(self, url: str, call_timeout: float) -> ToolServer:
        server = self._by_url.pop(url, None)
        if server is None:
            label = f"the tool server at {url}"
            server = HttpToolServer(
                label=label, url=url, timeout=call_timeout, outbound=self.outbound
            )
        self._by_url[url] = server
        if len(self._by_url) > MAX_URL_SERVERS:
            _, oldest = self._by_url.popitem(last=False)
            await oldest.aclose()
        return server

    async def aclose(self) -> None:
        servers = [*self._by_environment.values(), *self._by_url.values()]
        self._by_environment.clear()
        self._by_url.clear()
        for server in servers:
            await server.aclose()


def _open(config: RemoteEnvironmentConfig, outbound: OutboundPolicy) -> ToolServer:
    # The MCP SDK is loaded by the first process that talks to an MCP server, not by every
    # process that might (the API lists remote environments only when asked).
    from mcp.client.stdio import StdioServerParameters

    from loopline.environment.toolservers._mcp import McpToolServer

    label = f"the server of environment {config.name!r} ({config.target})"
    timeout = config.call_timeout_seconds
    if config.transport is RemoteTransport.http:
        return HttpToolServer(
            label=label,
            url=config.url or "",
            timeout=timeout,
            headers=config.headers,
            outbound=outbound,
        )
    if config.transport is RemoteTransport.mcp_http:
        return McpToolServer(
            label=label, timeout=timeout, url=config.url, headers=config.headers, outbound=outbound
        )
    command, *args = config.command or [""]
    stdio = StdioServerParameters(command=command, args=args, env=config.env or None)
    return McpToolServer(label=label, timeout=timeout, stdio=stdio)
