"""`loopline up`: the embedded stack, its demo, a clean Ctrl-C, and data kept across starts."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.harness import free_port


def start_up(
    data_dir: Path, ports: dict[str, int], *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "up",
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(ports["api"]),
            "--temporal-port",
            str(ports["temporal"]),
            "--ui-port",
            str(ports["ui"]),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def read_until(process: subprocess.Popen[str], marker: str, within: float = 90) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never appeared; output:\n{''.join(seen)}")


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def local_key(output: str) -> str:
    found = re.search(r"API key:\s+(ll_\w+)", output)
    assert found, output
    return found.group(1)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_up_runs_the_demo_stops_cleanly_and_keeps_runs(tmp_path: Path) -> None:
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    first = start_up(tmp_path, ports, "--demo")
    try:
        output = read_until(first, "demo passed")
    finally:
        code = stop(first)
    assert code == 0
    assert f"http://127.0.0.1:{ports['api']}/docs" in output
    assert f"http://127.0.0.1:{ports['ui']}" in output
    assert f"http://127.0.0.1:{ports['api']}/ui " in output
    viewer_links = re.findall(r"Viewer: +(http://\S+/ui/(?:runs|batches)/\w+)", output)
    assert len(viewer_links) == 3  # the two demo runs and the demo batch
    key = local_key(output)
    assert "reward 1.0" in output and "issue_refund(" in output
    summary = {line.split()[0]: line.split() for line in output.splitlines() if line.strip()}
    # France right in 3 rollouts of 3, Kenya in 1, Peru in none: pass@1 4/9, pass@3 2/3.
    assert summary["kenya"][-2:] == ["0.333", "1.000"]
    assert summary["all"][-2:] == ["0.444", "0.667"]
    assert "9/9 ended" in output  # the demo batch's progress
    # The terminal shows the banner and the demo; the logs are in the data dir.
    assert not re.search(r" (INFO|DEBUG) |level=(INFO|ERROR)", output), output
    logged = (tmp_path / "loopline.log").read_text()
    assert "alembic.runtime.migration" in logged and "POST /v1/runs 201" in logged
    assert not listening(ports["temporal"]) and not listening(ports["api"])

    second = start_up(tmp_path, ports)
    try:
        restarted = read_until(second, "Ctrl-C stops everything")
        assert local_key(restarted) == key  # the local key is kept, not made anew
        url = f"http://127.0.0.1:{ports['api']}/v1/runs"
        assert httpx.get(url, timeout=30).status_code == 401
        runs = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
        assert runs["total"] == 2 + 9  # the two demo runs and the demo batch's
        assert {run["status"] for run in runs["runs"]} == {"completed"}
        headers = {"Authorization": f"Bearer {key}"}
        for link in viewer_links:
            page = httpx.get(link, headers=headers, timeout=30)
            assert page.status_code == 200 and link.rsplit("/", 1)[1] in page.text
    finally:
        assert stop(second) == 0
