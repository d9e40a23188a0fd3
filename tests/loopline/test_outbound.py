"""The outbound URL policy: what it denies by default, what operators allow or deny, and
that it holds on the address a connection goes to, whatever name led there."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from fastapi import FastAPI

from loopline.outbound import OutboundBlocked, OutboundPolicy, blocked_in
from tests.harness import free_port, serving

STRICT = OutboundPolicy()
LOCAL = OutboundPolicy(local=True)


@pytest.mark.parametrize(
    ("address", "strict", "local"),
    [
        ("127.0.0.1", "a loopback address", None),
        ("::1", "a loopback address", None),
        ("10.1.2.3", "a private address", None),
        ("192.168.0.9", "a private address", None),
        ("172.20.0.1", "a private address", None),
        ("169.254.169.254", "a link-local address", "a link-local address"),
        ("fe80::1", "a link-local address", "a link-local address"),
        ("0.0.0.0", "an unspecified address", "an unspecified address"),
        ("::ffff:127.0.0.1", "a loopback address", None),
        ("93.184.216.34", None, None),
    ],
)
def test_what_is_denied_by_default_and_on_one_machine(
    address: str, strict: str | None, local: str | None
) -> None:
    ip = ipaddress.ip_address(address)
    for policy, kind in ((STRICT, strict), (LOCAL, local)):
        refusal = policy.refusal(address, ip)
        assert (refusal is None) == (kind is None), (policy.local, address, refusal)
        if kind is not None:
            assert kind in (refusal or "")


def test_operators_allow_and_deny_hosts_and_networks() -> None:
    policy = OutboundPolicy.of(
        ["10.0.0.0/8", "tools.internal", "*.svc.cluster.local"],
        ["10.9.0.0/16", "evil.example"],
    )
    assert policy.refusal("10.1.1.1", ipaddress.ip_address("10.1.1.1")) is None
    assert "LOOPLINE_OUTBOUND_DENY" in (policy.refusal("x", ipaddress.ip_address("10.9.1.1")) or "")
    assert policy.refusal("tools.internal", ipaddress.ip_address("192.168.1.1")) is None
    assert policy.refusal("shop.svc.cluster.local", ipaddress.ip_address("172.17.0.2")) is None
    assert "denied" in (policy.refusal("evil.example", ipaddress.ip_address("93.184.216.34")) or "")


def test_a_url_is_refused_at_the_request_only_for_a_literal_denied_address() -> None:
    assert "loopback" in (STRICT.check_url("http://127.0.0.1:7243/api/v1/namespaces") or "")
    assert "link-local" in (STRICT.check_url("http://[fe80::1]/latest/meta-data") or "")
    assert STRICT.check_url("http://localhost:8000/hook") is None  # checked when resolved
    assert STRICT.check_url("https://hooks.example.com/x") is None


async def test_a_name_that_resolves_into_a_denied_range_is_blocked_at_connect_time() -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"reached": "yes"}

    port = free_port()
    async with serving(app, port):
        async with httpx.AsyncClient(transport=STRICT.transport(), trust_env=False) as http:
            refused = r"outbound URL policy: localhost resolves to .*loopback"
            with pytest.raises(OutboundBlocked, match=refused):
                await http.get(f"http://localhost:{port}/")
        allowed = OutboundPolicy.of(["127.0.0.0/8"])
        async with httpx.AsyncClient(transport=allowed.transport(), trust_env=False) as http:
            assert (await http.get(f"http://localhost:{port}/")).json() == {"reached": "yes"}


async def test_the_httpx2_transport_of_the_provider_sdks_is_guarded_too() -> None:
    import httpx2

    async with httpx2.AsyncClient(transport=STRICT.transport2(), trust_env=False) as http:
        with pytest.raises(Exception) as raised:
            await http.get(f"http://127.0.0.1:{free_port()}/")
    assert blocked_in(raised.value) is not None
