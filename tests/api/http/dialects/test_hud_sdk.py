"""hud-python 0.5.x, unchanged: the guide's Python example and hud's own agent on a real
provider SDK reach Loopline's hub (MCP) and traces, with only URLs and the key set.

The SDK pins mcp<2, so it runs from the virtualenv .ci/run makes for it (.venv-hud)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from tests.harness import Stack
from tests.upstream import Reply, Upstream

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[4]
HUD_PYTHON = Path(os.environ.get("LOOPLINE_HUD_PYTHON", ROOT / ".venv-hud" / "bin" / "python"))
HUD_INSTALLED = HUD_PYTHON.exists()
EXAMPLES = Path(__file__).parent / "seed_examples"
SCRIPT_SECONDS = 180


async def run_example(stack: Stack, script: str, home: Path, **env: str) -> str:
    """Run a seed example with hud-python; its stdout, once it exited 0."""
    if not HUD_INSTALLED:
        pytest.skip(f"no hud-python virtualenv at {HUD_PYTHON}: .ci/run makes it")
    environ = {
        "PATH": os.environ.get("PATH", ""),
        # No ~/.hud/.env of the machine's: the SDK reads settings from there too.
        "HOME": str(home),
        "HUD_API_URL": f"{stack.api_url}/hud",
        "HUD_MCP_URL": f"{stack.api_url}/hud/v3/mcp",
        "HUD_API_KEY": stack.api_key,
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        str(HUD_PYTHON),
        str(EXAMPLES / script),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), SCRIPT_SECONDS)
    assert process.returncode == 0, err.decode()[-3000:]
    assert b"Failed to send eval" not in err, err.decode()[-3000:]
    return out.decode()


async def client_runs(native: httpx.AsyncClient) -> set[str]:
    params: dict[str, str | int] = {"environment": "my-assistant", "model": "client", "limit": 200}
    page = (await native.get("/v1/runs", params=params)).json()
    return {run["run_id"] for run in page["runs"]}


async def test_the_guides_python_example_runs_unchanged(
    dialect_stack: Stack, native: httpx.AsyncClient, tmp_path: Path
) -> None:
    before = await client_runs(native)
    out = await run_example(dialect_stack, "hud_scenario.py", tmp_path)
    assert out.strip().splitlines()[-1] == "Paris is the capital of France."
    [trace_id] = await client_runs(native) - before

    async with dialect_stack.client() as http:
        trace = (await http.get(f"/hud/telemetry/traces/{trace_id}")).json()
        run = (await http.get(f"/v1/runs/{trace_id}")).json()
    assert trace["status"] == "completed"
    # The guide's own check: "helpful" is not in the respond tool's answer.
    assert trace["reward"] == 0.0
    assert run["answer"] == "Paris is the capital of France."
    assert run["stop_reason"] == "stop_tool"


async def test_huds_agent_on_a_provider_sdk_earns_the_reward(
    dialect_stack: Stack, native: httpx.AsyncClient, upstream: Upstream, tmp_path: Path
) -> None:
    answer = "A helpful answer: Paris."
    upstream.plan(
        "gpt-hud-agent",
        Reply(tool_calls=[("respond", json.dumps({"answer": answer}))]),
        Reply(text=answer),
    )
    out = await run_example(
        dialect_stack, "hud_agent.py", tmp_path, PROVIDER_BASE_URL=upstream.openai_url
    )
    reported = json.loads(out.strip().splitlines()[-1])
    assert reported["reward"] == 1.0, reported
    trace_id = reported["trace_id"]

    async with dialect_stack.client() as http:
        trace = (
            await http.get(f"/hud/telemetry/traces/{trace_id}", params={"include_trajectory": True})
        ).json()
    assert trace["reward"] == 1.0 and trace["status"] == "completed"
    [first] = upstream.requests["gpt-hud-agent"][:1]
    assert "Answer this question: What is the capital of France?" in json.dumps(first.body)
    tool_results = [step for step in trace["trajectory"] if "respond" in json.dumps(step)]
    assert tool_results, trace["trajectory"]
