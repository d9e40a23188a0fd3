"""Starting and stopping the test servers as real processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.harness import free_port


@dataclass
class ShopServer:
    """tests/servers/mcp_shop.py over streamable HTTP, in a process of its own."""

    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> None:
        self.process = self._spawn()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                await self.stats()
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        raise TimeoutError(f"the MCP shop did not come up; see {self.log}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.servers.mcp_shop", "--port", str(self.port)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    async def forget_sessions(self) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.post(f"http://127.0.0.1:{self.port}/forget")
            response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{self.port}/stats")
            response.raise_for_status()
            stats: dict[str, Any] = response.json()
            return stats


def shop_config(name: str, server: ShopServer, **options: Any) -> dict[str, Any]:
    """A remote environment entry of LOOPLINE_REMOTE_ENVIRONMENTS for a shop server."""
    return {
        "name": name,
        "transport": "mcp-http",
        "url": server.url,
        "scenarios": [
            {
                "name": "buy",
                "args_schema": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": {"type": "string"}}},
                    "required": ["items"],
                },
            }
        ],
        **options,
    }
