"""Schemathesis, driven by the API's own OpenAPI document, sends thousands of generated
requests (valid, invalid and sequences that follow the links between operations) to a real
API and worker: none may be answered with a 5xx."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from tests.harness import Stack

# Fixed, so a failure found in CI replays the same way on a laptop.
SEED = "20261124"
EXAMPLES_PER_OPERATION = "20"


async def test_no_generated_request_gets_a_server_error(
    temporal_address: str, tmp_path: Path
) -> None:
    stack = Stack(temporal_address=temporal_address, workdir=tmp_path)
    stack.start_worker()
    await stack.start_api()
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "run",
        f"{stack.api_url}/openapi.json",
        "--checks=not_a_server_error",
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
