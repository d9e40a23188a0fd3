"""The `loopline` command says what is wrong instead of printing a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.harness import Stack, free_port
from tests.upstream import Reply, Upstream


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


async def test_batch_runs_a_jsonl_file_prints_a_summary_and_exports_runs(
    stack: Stack, tmp_path: Path
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "\n".join(
            json.dumps(
                {
                    "slug": country.lower(),
                    "scenario": "capital",
                    "args": {"country": country},
                    "env": {"name": "trivia"},
                }
            )
            for country in ("France", "Peru")
        )
    )
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"steps": [{"content": "Paris"}]}))
    output = tmp_path / "runs.jsonl"

    done = await asyncio.to_thread(
        loopline,
        "batch",
        "--tasks",
        str(tasks),
        "--rollouts",
        "2",
        "--max-parallel",
        "2",
        "--script",
        str(script),
        "--api-url",
        stack.api_url,
        "--api-key",
        stack.api_key,
        "--output",
        str(output),
    )

    assert done.returncode == 0, done.stderr
    assert "4/4 ended" in done.stderr
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert table["task"][-2:] == ["pass@1", "pass@2"]
    assert table["france"][5:] == ["1.000", "1.000", "1.000", "1.000"]
    assert table["peru"][5:] == ["0.000", "0.000", "0.000", "0.000"]
    exported = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(run["task"], run["rollout"]) for run in exported] == [
        ("france", 0),
        ("france", 1),
        ("peru", 0),
        ("peru", 1),
    ]


async def test_batch_takes_a_model_config_file_with_its_key_from_the_environment(
    stack: Stack, upstream: Upstream, tmp_path: Path
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    task = {"slug": "peru", "scenario": "capital", "args": {"country": "Peru"}}
    tasks.write_text(json.dumps({**task, "env": {"name": "trivia"}}))
    name = "local-llama"
    config = {"model": name, "base_url": upstream.openai_url, "api_key_env": "LOCAL_KEY"}
    (tmp_path / "model.json").write_text(json.dumps({**config, "stream": False}))
    upstream.plan(name, Reply(text="Lima."))

    done = await asyncio.to_thread(
        loopline,
        "batch",
        "--tasks",
        str(tasks),
        "--model",
        str(tmp_path / "model.json"),
        "--api-url",
        stack.api_url,
        "--api-key",
        stack.api_key,
        LOCAL_KEY="sk-local",
    )

    assert done.returncode == 0, done.stderr
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert table["peru"][5] == "1.000", done.stdout
    [request] = upstream.requests[name]
    assert request.headers["authorization"] == "Bearer sk-local"

    unset = loopline("batch", "--tasks", str(tasks), "--model", json.dumps(config))
    assert unset.returncode == 2 and "api_key_env 'LOCAL_KEY' is not set" in unset.stderr


def test_batch_with_a_bad_file_or_request_says_what_to_fix(stack: Stack, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"slug": "a"}\nnot json\n')
    done = loopline("batch", "--tasks", str(broken), "--api-url", stack.api_url)
    assert done.returncode == 2 and f"{broken}:2: not JSON" in done.stderr

    key = {"LOOPLINE_API_KEY": stack.api_key}
    done = loopline("batch", "--taskset", "no-such-taskset", "--api-url", stack.api_url, **key)
    assert done.returncode == 2 and "422" in done.stderr and "no-such-taskset" in done.stderr
    assert "Traceback" not in done.stderr

    done = loopline("batch", "--taskset", "any", "--api-url", stack.api_url, LOOPLINE_API_KEY="")
    assert done.returncode == 2 and "401" in done.stderr and "--api-key" in done.stderr


def test_a_taken_metrics_port_stops_servers_but_not_one_off_commands(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        worker = loopline("worker", LOOPLINE_METRICS_ADDRESS=address)
        database = f"sqlite:///{tmp_path / 'keys.db'}"
        keys = loopline(
            "keys", "list", LOOPLINE_METRICS_ADDRESS=address, LOOPLINE_DATABASE_URL=database
        )
    assert worker.returncode == 2
    assert f"cannot serve metrics at {address} (LOOPLINE_METRICS_ADDRESS)" in worker.stderr
    assert "Traceback" not in worker.stderr
    assert keys.returncode == 0, keys.stderr


async def test_keys_create_list_revoke(stack: Stack) -> None:
    database = {"LOOPLINE_DATABASE_URL": stack.database_url}
    created = loopline(
        "keys",
        "create",
        "--name",
        "ci",
        "--project",
        "cli-test",
        "--scope",
        "task:read",
        **database,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    key_id = key.split("_")[1]
    assert "Keep it now" in created.stderr and key not in created.stderr

    listed = loopline("keys", "list", "--project", "cli-test", **database)
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(key_id))
    assert row[1:4] == ["ci", "cli-test", "task:read"] and row[-1] == "-"
    assert key.split("_")[2] not in listed.stdout

    async with stack.client(key) as http:
        assert (await http.get("/v1/runs")).status_code == 200
        assert loopline("keys", "revoke", key_id, **database).returncode == 0
        assert (await http.get("/v1/runs")).status_code == 401

    bad = loopline("keys", "create", "--name", "x", "--project", "Bad Name", **database)
    assert bad.returncode == 2 and "lowercase" in bad.stderr and "Traceback" not in bad.stderr
    unknown = loopline("keys", "revoke", "000000000000", **database)
    assert unknown.returncode == 2 and "no API key" in unknown.stderr
