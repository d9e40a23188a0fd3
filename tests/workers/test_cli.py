"""The `loopline` command says what is wrong instead of printing a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.harness import free_port


def loopline(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_worker_and_api_without_temporal_exit_2_saying_so() -> None:
    for command in (["worker"], ["api", "--port", str(free_port())]):
        done = loopline(*command, LOOPLINE_TEMPORAL_ADDRESS="127.0.0.1:1")
        assert done.returncode == 2
        assert "cannot reach Temporal at 127.0.0.1:1" in done.stderr
        assert "LOOPLINE_TEMPORAL_ADDRESS" in done.stderr
        assert "Traceback" not in done.stderr


def test_up_with_a_taken_port_exits_2_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = loopline("up", "--data-dir", str(tmp_path), "--api-port", str(port))
    assert done.returncode == 2
    assert f"port {port} for the API is taken" in done.stderr and "--api-port" in done.stderr
    assert not (tmp_path / "temporal.db").exists()
