"""The outbound URL policy: where Loopline's own requests may go (callbacks, relay webhooks,
tool servers, remote environments, model base URLs).

Checked twice: a URL naming a literal address in a denied range is refused when a request
names it (the API answers 422), and every connection is checked on the address it goes to
once the name is resolved, so a name that resolves (or is rebound) into a denied range is
blocked too. By default loopback, link-local (169.254.0.0/16, cloud metadata), private and
unspecified addresses are denied; `loopline up` (one user, one machine) allows loopback and
private ranges but still denies link-local. Operators allow or deny hosts and networks
with LOOPLINE_OUTBOUND_ALLOW and LOOPLINE_OUTBOUND_DENY; a deny entry wins.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LINK_LOCAL = tuple(ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10"))
LOOPBACK = tuple(ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128"))
PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
UNSPECIFIED = tuple(ipaddress.ip_network(n) for n in ("0.0.0.0/8", "::/128"))
HOW_TO_ALLOW = "an operator may allow it with LOOPLINE_OUTBOUND_ALLOW"


class OutboundBlocked(ConnectionError):
    """A request the outbound URL policy does not let through."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_hosts: tuple[str, ...] = ()
    allow_networks: tuple[Network, ...] = ()
    deny_hosts: tuple[str, ...] = ()
    deny_networks: tuple[Network, ...] = ()
    # One user on one machine (`loopline up`): loopback and private addresses are theirs.
    local: bool = False

    @classmethod
    def of(
        cls, allow: Iterable[str] = (), deny: Iterable[str] = (), *, local: bool = False
    ) -> OutboundPolicy:
        allow_hosts, allow_networks = _split(allow)
        deny_hosts, deny_networks = _split(deny)
        return cls(allow_hosts, allow_networks, deny_hosts, deny_networks, local)

    def refusal(self, host: str, address: Address | None) -> str | None:
        """Why a connection to `host` at `address` is not let through, or None."""
        name = host.lower().rstrip(".")
        if _matches(name, self.deny_hosts) or _within(address, self.deny_networks):
            return f"{host} is denied (LOOPLINE_OUTBOUND_DENY)"
        if _matches(name, self.allow_hosts) or _within(address, self.allow_networks):
            return None
        if address is None:
            return None
        kind = self._denied_kind(address)
        return None if kind is None else f"{host} is {kind}; {HOW_TO_ALLOW}"

    def check_url(self, url: str) -> str | None:
        """What is wrong with a URL named in a request: a denied host, or a literal address
        in a denied range (a name is checked when it is resolved, at connect time)."""
        host = urlsplit(url).hostname or ""
        return self.refusal(host, _literal(host))

    async def address_for(self, host: str, port: int) -> str:
        """The address to connect to for `host`: the first that is let through."""
        literal = _literal(host)
        if literal is not None:
            candidates = [literal]
        else:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            candidates = [ipaddress.ip_address(info[4][0]) for info in found]
        refusals = []
        for address in candidates:
            refusal = self.refusal(host, address)
            if refusal is None:
                return str(address)
            refusals.append(f"{address}: {refusal}")
        raise OutboundBlocked(
            f"blocked by the outbound URL policy: {host} resolves to {'; '.join(refusals)}"
        )

    def transport(self, **options: Any) -> httpx.AsyncHTTPTransport:
        """An httpx transport whose every connection this policy checks."""
        transport = httpx.AsyncHTTPTransport(**options)
        guard(transport._pool, self.backend(httpcore.AnyIOBackend()))
        return transport

    def transport2(self, **options: Any) -> Any:
        """The same for httpx2, the fork that the openai, anthropic and mcp SDKs use; it is
        imported only where one of them makes a call."""
        import httpcore2
        import httpx2

        transport = httpx2.AsyncHTTPTransport(**options)
        guard(transport._pool, self.backend(httpcore2.AnyIOBackend()))
        return transport

    def backend(self, inner: Any) -> httpcore.AsyncNetworkBackend:
        """A network backend (httpcore's, or httpcore2's for the MCP SDK's httpx2) that
        opens only connections this policy lets through."""
        return _Backend(self, inner)

    def describe(self) -> str:
        if self.local:
            return (
                "loopback and private addresses allowed (one user, one machine); link-local denied"
            )
        return "loopback, link-local, private and unspecified addresses denied"

    def _denied_kind(self, address: Address) -> str | None:
        if _within(address, LINK_LOCAL):
            return "a link-local address (cloud metadata lives there)"
        if _within(address, UNSPECIFIED):
            return "an unspecified address"
        if _within(address, LOOPBACK):
            return None if self.local else "a loopback address"
        if _within(address, PRIVATE) or address.is_private:
            return None if self.local else "a private address"
        return None


def guard(pool: Any, backend: Any) -> None:
    """Make a connection pool (httpcore's or httpcore2's) open connections through
    `backend`: the pool keeps its backend in `_network_backend`, used for every new
    connection (tests/loopline/test_outbound.py checks that this holds)."""
    pool._network_backend = backend


class _Backend(httpcore.AsyncNetworkBackend):
    """Resolves a host, checks the address, connects to that very address (TLS still
    verifies the host's name)."""

    def __init__(self, policy: OutboundPolicy, inner: Any) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        address = await self._policy.address_for(host, port)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Any = None,
    ) -> Any:
        raise OutboundBlocked("blocked by the outbound URL policy: no Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def blocked_in(error: BaseException) -> OutboundBlocked | None:
    """The policy's refusal behind an error a client library wrapped it in, if any."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OutboundBlocked):
            return current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
    return None


def _split(entries: Iterable[str]) -> tuple[tuple[str, ...], tuple[Network, ...]]:
    hosts: list[str] = []
    networks: list[Network] = []
    for entry in (item.strip() for item in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.append(entry.lower())
    return tuple(hosts), tuple(networks)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _within(address: Address | None, networks: tuple[Network, ...]) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)
