"""The call-agent dialect: call (inline config, raw .agent text, path, version, deployed
environment), suspend on a client-side tool and continue, stream, save=false."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
from humanloop import AsyncHumanloop
from humanloop.core.api_error import ApiError
from humanloop.requests import ChatMessageParams
from humanloop.types import AgentResponse

from tests.upstream import Reply, Upstream

WEATHER = {
    "type": "inline",
    "json_schema": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
AGENT = {
    "model": "gpt-4o-agent",
    "provider": "openai",
    "template": [{"role": "system", "content": "You help {{name}}."}],
    "temperature": 0.2,
    "max_iterations": 4,
    "tools": [WEATHER],
}
AGENT_FILE = """---
model: gpt-4o-file
provider: openai
temperature: 0.1
max_iterations: 3
---
<system>
You are terse.
</system>
<user>
What is {{thing}}?
</user>
"""


def agents_api(base: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{base}/agents-api", headers={"X-API-KEY": key}, timeout=60)


async def test_call_suspend_on_a_client_tool_then_continue(
    base: str, key: str, upstream: Upstream
) -> None:
    upstream.plan(
        "gpt-4o-agent",
        Reply(tool_calls=[("get_weather", '{"city": "Oslo"}')], prompt_tokens=50),
        Reply(text="It is sunny in Oslo.", prompt_tokens=80, output_tokens=7),
    )
    call = {
        "stream": False,
        "path": "support/weather",
        "agent": AGENT,
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "inputs": {"name": "Ada"},
        "metadata": {"ticket": 3},
        "user": "ada@example.com",
        "include_trace_children": True,
    }
    async with agents_api(base, key) as http:
        first = await http.post("/agents/call", json=call)
        assert first.status_code == 200, first.text
        log = first.json()
        assert log["log_status"] == "incomplete"
        [tool_call] = log["previous_agent_message"]["tool_calls"]
        assert tool_call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
        assert log["agent"]["path"] == "support/weather"
        assert log["agent"]["version_id"].startswith("agv_")
        assert log["inputs"] == {"name": "Ada"}
        assert log["metadata"] == {"ticket": 3}
        assert log["user"] == "ada@example.com"

        results = [{"role": "tool", "tool_call_id": tool_call["id"], "content": "Sunny, 21C"}]
        done = await http.post(
            "/agents/continue",
            json={"log_id": log["id"], "messages": results, "include_trace_children": True},
        )
        assert done.status_code == 200, done.text
        final = done.json()
    assert final["log_status"] == "complete"
    assert final["output"] == "It is sunny in Oslo."
    assert final["output_message"]["content"] == "It is sunny in Oslo."
    assert final["finish_reason"] == "stop"
    assert final["previous_agent_message"] is None
    assert final["prompt_tokens"] == 130
    assert final["output_tokens"] == 27
    assert [child["type"] for child in final["trace_children"]] == ["prompt", "tool", "prompt"]
    sent = upstream.requests["gpt-4o-agent"][0].body
    assert sent["messages"][0] == {"role": "system", "content": "You help Ada."}
    assert sent["temperature"] == 0.2
    assert sent["tools"][0]["function"]["name"] == "get_weather"


async def test_agent_file_versions_and_environments(
    base: str, key: str, upstream: Upstream, native: httpx.AsyncClient
) -> None:
    upstream.plan("gpt-4o-file", *[Reply(text=f"Answer {n}.") for n in range(5)])
    call = {"path": "terse", "agent": AGENT_FILE, "inputs": {"thing": "Loopline"}}
    async with agents_api(base, key) as http:
        first = (await http.post("/agents/call", json=call)).json()
        again = (await http.post("/agents/call", json=call)).json()
        assert first["output"] == "Answer 0."
        version = first["agent"]["version_id"]
        assert again["agent"]["version_id"] == version  # same content, same version
        sent = upstream.requests["gpt-4o-file"][0].body["messages"]
        assert sent == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is Loopline?"},
        ]

        changed = AGENT_FILE.replace("temperature: 0.1", "temperature: 0.3")
        upserted = await http.post(
            "/agents", json={"path": "terse", "model": "gpt-4o-file", "provider": "openai"}
        )
        assert upserted.status_code == 200, upserted.text
        assert upserted.json()["version_id"] != version
        agent_id = first["agent"]["id"]
        deployed = await http.post(
            f"/agents/{agent_id}/environments/staging", params={"version_id": version}
        )
        assert deployed.status_code == 200, deployed.text

        by_env = await http.post(
            "/agents/call",
            params={"environment": "staging"},
            json={"id": agent_id, "inputs": {"thing": "x"}},
        )
        assert by_env.json()["agent"]["version_id"] == version
        by_version = await http.post(
            "/agents/call", params={"version_id": version}, json={"inputs": {"thing": "y"}}
        )
        assert by_version.json()["agent"]["version_id"] == version
        streamed = await http.post(
            "/agents/call",
            json={"path": "terse", "agent": changed, "inputs": {"thing": "z"}, "stream": True},
        )
        frames = [
            json.loads(line.removeprefix("data: "))
            for line in streamed.text.splitlines()
            if line.startswith("data: ")
        ]
        assert frames[-1]["type"] == "agent_log"
        assert frames[-1]["log"]["output"] == "Answer 4."
        assert frames[-1]["log"]["agent"]["version_id"] not in {version}
        assert any(f["type"] == "message" for f in frames[:-1])

        missing = await http.post(
            "/agents/call", params={"environment": "nowhere"}, json={"id": agent_id}
        )
        assert missing.status_code == 404
        no_input = await http.post("/agents/call", json={"path": "terse", "agent": AGENT_FILE})
        assert no_input.status_code == 422
        assert "thing" in no_input.text
        no_key = await http.post("/agents/call", json=call, headers={"X-API-KEY": ""})
        assert no_key.status_code == 401


async def test_save_false_keeps_no_payloads(
    base: str, key: str, upstream: Upstream, native: httpx.AsyncClient
) -> None:
    upstream.plan("gpt-4o-private", Reply(text="Your secret is safe."))
    call = {
        "path": "private",
        "agent": {"model": "gpt-4o-private", "provider": "openai"},
        "messages": [{"role": "user", "content": "my secret is 1234"}],
        "inputs": {"pin": "1234"},
        "save": False,
        "return_inputs": False,
    }
    async with agents_api(base, key) as http:
        log = (await http.post("/agents/call", json=call)).json()
    assert log["output"] == "Your secret is safe."
    assert log["inputs"] == {}
    assert log["save"] is False
    run = (await native.get(f"/v1/runs/{log['id']}", params={"include_trajectory": True})).json()
    assert run["status"] == "completed"
    assert run["answer"] is None
    assert "1234" not in json.dumps(run)


async def test_an_agent_is_refused_when_saved_with_a_model_without_a_provider(
    base: str, key: str
) -> None:
    async with agents_api(base, key) as http:
        upserted = await http.post("/agents", json={"path": "vague", "model": "llama-3"})
        called = await http.post(
            "/agents/call",
            json={
                "path": "vague",
                "agent": {"model": "llama-3"},
                "messages": [{"role": "user", "content": "hello"}],
            },
        )
        continued = await http.post(
            "/agents/continue",
            json={"log_id": "x", "messages": [{"role": "user", "content": "hello"}]},
        )

    assert upserted.status_code == 422
    assert "cannot tell the provider of model 'llama-3'" in upserted.text
    assert upserted.json()["detail"][0]["loc"] == ["body", "model"]
    assert called.status_code == 422
    assert called.json()["detail"][0]["loc"] == ["body", "agent", "model"]
    assert continued.status_code == 422
    assert continued.json()["detail"][0]["loc"][:3] == ["body", "messages", 0]


async def test_the_official_client_lists_and_reads_agents(base: str, key: str) -> None:
    client = AsyncHumanloop(api_key=key, base_url=f"{base}/agents-api")
    template: list[ChatMessageParams] = [{"role": "system", "content": "You help {{name}}."}]
    first = await client.agents.upsert(
        path="listed/alpha", model="gpt-4o-listed", provider="openai", template=template
    )
    second = await client.agents.upsert(
        path="listed/alpha",
        model="gpt-4o-listed",
        provider="openai",
        template=template,
        temperature=0.9,
    )
    other = await client.agents.upsert(
        path="listed/beta", model="gpt-4o-listed", provider="openai", template=template
    )
    await client.agents.set_deployment(
        id=first.id, environment_id="production", version_id=first.version_id
    )

    pager = await client.agents.list(page=1, size=1, name="LISTED/")
    assert isinstance(pager.items, list) and len(pager.items) == 1
    listed = [agent async for agent in pager]  # the client pages on until a page is empty
    assert [agent.path for agent in listed] == ["listed/alpha", "listed/beta"]
    alpha, beta = listed
    assert isinstance(alpha, AgentResponse) and isinstance(alpha.created_at, datetime)
    # The deployed version, not the newest; which environments point at it.
    assert alpha.version_id == first.version_id != second.version_id
    assert [(env.name, env.tag) for env in alpha.environments or []] == [("production", "default")]
    assert [i.name for i in alpha.inputs] == ["name"]
    assert beta.version_id == other.version_id and beta.environments == []

    got = await client.agents.get(first.id)
    assert (got.id, got.version_id, got.model) == (first.id, first.version_id, "gpt-4o-listed")
    by_version = await client.agents.get(first.id, version_id=second.version_id)
    assert by_version.temperature == 0.9
    for missing in (
        client.agents.get("ag_nope"),
        client.agents.get(other.id, version_id=first.version_id),
    ):
        with pytest.raises(ApiError) as refused:
            await missing
        assert refused.value.status_code == 404
