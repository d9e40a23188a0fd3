"""Schemathesis, driven by the API's own OpenAPI document, sends thousands of generated
requests (valid, invalid and sequences that follow the links between operations) to a real
API and worker, with every check it has: no 5xx, every status code and header documented,
every answer in its schema, invalid input refused, 405 with the right Allow header.

All but `positive_data_acceptance`, which wants every schema-valid request accepted. Some
rules of a valid request depend on what the deployment holds, which no static document
states: the environments loaded and their scenarios (remote ones are listed by their
servers at run time), each scenario's own args schema, the models a provider serves, task
overrides naming tasks the same request selects. Those are refused with a 422 that says
what to fix, and the tests of each route check them.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.harness import Stack, answer_step, session_body

# Fixed, so a failure found in CI replays the same way on a laptop.
SEED = "20261124"
EXAMPLES_PER_OPERATION = "20"
TASK = {
    "slug": "kenya",
    "env": {"name": "trivia"},
    "scenario": "capital",
    "args": {"country": "Kenya"},
}
# Records that exist, so requests about a run, a batch or a taskset reach the code behind
# the lookup instead of a 404 (the operations may still change or delete them).
EXISTING = {"run_id": "fuzz-session", "batch_id": "fuzz-batch", "taskset": "fuzz-set"}


async def make_existing_records(api: httpx.AsyncClient) -> None:
    script = {"steps": [answer_step("Nairobi")]}
    made = [
        await api.post("/v1/runs", json=session_body(run_id=EXISTING["run_id"])),
        await api.post("/v1/tasksets/upload", json={"name": EXISTING["taskset"], "tasks": [TASK]}),
        await api.post(
            "/v1/batches",
            json={"batch_id": EXISTING["batch_id"], "tasks": [TASK], "script": script},
        ),
    ]
    for response in made:
        assert response.status_code in (200, 201), response.text


async def test_generated_requests_pass_every_schemathesis_check(
    temporal_address: str, tmp_path: Path
) -> None:
    stack = Stack(temporal_address=temporal_address, workdir=tmp_path)
    stack.start_worker()
    await stack.start_api()
    async with stack.client(timeout=60) as api:
        await make_existing_records(api)
    parameters = "\n".join(f'"path.{name}" = "{value}"' for name, value in EXISTING.items())
    (tmp_path / "schemathesis.toml").write_text(f"[parameters]\n{parameters}\n")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "run",
        f"{stack.api_url}/openapi.json",
        "--checks=all",
        "--exclude-checks=positive_data_acceptance",
        f"--header=Authorization: Bearer {stack.api_key}",
        f"--max-examples={EXAMPLES_PER_OPERATION}",
        f"--seed={SEED}",
        "--request-timeout=20",
        "--workers=1",
        "--generation-database=none",
    ]
    try:
        fuzz = await asyncio.to_thread(
            subprocess.run, command, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
    finally:
        stack.stop()
    report = fuzz.stdout + fuzz.stderr
    (tmp_path / "schemathesis.txt").write_text(report)

    assert fuzz.returncode == 0, report[-6000:]
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None, report[-2000:]
    assert int(generated.group(1)) >= 2000, report[-2000:]
    operations = re.search(r"Selected: \d+/(\d+)\s+Tested: (\d+)", report)
    assert operations is not None, report[-2000:]
    assert operations.group(1) == operations.group(2), "some operations were not tested"
