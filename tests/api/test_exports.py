"""Exports for training: runs of a batch played by the scripted model (France right, Peru
wrong), exported as OpenAI chat fine-tuning JSONL (each line checked against the `openai`
package's own types) and as RL episodes, filtered, refused, and written by the CLI."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import TypeAdapter

from loopline.models import Scope
from tests.activities.providers.test_openai_chat import gpt
from tests.api.test_batches import wait_for_batch
from tests.harness import Stack, answer_step, model_body, run_to_end, tool_step
from tests.upstream import Reply, Upstream
from workers.cli import build_parser
from workers.cli.export import ExportCommandError, run_export_command

MESSAGES = TypeAdapter(list[ChatCompletionMessageParam])
TOOLS = TypeAdapter(list[ChatCompletionToolParam])
TRIVIA_TOOLS = {"lookup", "calculator", "submit_answer"}


@dataclass(frozen=True)
class Batch:
    batch_id: str
    taskset: str
    run_ids: list[str]


@pytest.fixture(scope="module")
async def batch(stack: Stack) -> Batch:
    """Two rollouts each of France (answered right: reward 1) and Peru (wrong: reward 0),
    one lookup before the answer."""
    name = f"exports-{uuid.uuid4().hex[:8]}"
    tasks = [
        {
            "slug": country,
            "scenario": "capital",
            "args": {"country": country},
            "env": {"name": "trivia"},
        }
        for country in ("France", "Peru")
    ]
    script = {"steps": [tool_step("lookup", topic="France"), answer_step("Paris")]}
    async with stack.client() as api:
        upload = await api.post("/v1/tasksets/upload", json={"name": name, "tasks": tasks})
        assert upload.status_code == 200, upload.text
        body = {"taskset": name, "rollout_count": 2, "script": script}
        started = await api.post("/v1/batches", json=body)
        assert started.status_code == 201, started.text
        done = await wait_for_batch(api, started.json()["batch_id"])
    assert done["status"] == "completed", done
    return Batch(done["batch_id"], name, started.json()["run_ids"])


async def export(api: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/v1/exports", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def assert_fine_tuning_example(line: dict[str, Any]) -> None:
    """What OpenAI's fine-tuning takes: typed messages and tools, no other keys, every tool
    call answered by a tool message that names it, and at least one assistant message."""
    assert set(line) <= {"messages", "tools", "parallel_tool_calls"}
    MESSAGES.validate_python(line["messages"])
    TOOLS.validate_python(line["tools"])
    allowed = {"role", "content", "tool_calls", "tool_call_id", "weight"}
    assert all(set(message) <= allowed for message in line["messages"])
    called: list[str] = []
    answered: list[str] = []
    for message in line["messages"]:
        for call in message.get("tool_calls", []):
            assert call["type"] == "function"
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
            called.append(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in called
            answered.append(message["tool_call_id"])
    assert sorted(called) == sorted(answered)
    assert any(message["role"] == "assistant" for message in line["messages"])


async def test_a_batch_exports_as_fine_tuning_examples(
    api: httpx.AsyncClient, batch: Batch
) -> None:
    lines = await export(api, format="openai-chat", batch_id=batch.batch_id)

    assert len(lines) == 4
    for line in lines:
        assert_fine_tuning_example(line)
        roles = [message["role"] for message in line["messages"]]
        assert roles == ["system", "user", "assistant", "tool", "assistant"]
        assert {tool["function"]["name"] for tool in line["tools"]} == TRIVIA_TOOLS
        call = line["messages"][2]["tool_calls"][0]
        assert json.loads(call["function"]["arguments"]) == {"topic": "France"}
        assert "content" not in line["messages"][2]
        assert line["messages"][-1]["content"] == "Paris"


async def test_filters_pick_the_runs(api: httpx.AsyncClient, batch: Batch) -> None:
    def users(lines: list[dict[str, Any]]) -> list[str]:
        return sorted(line["messages"][1]["content"] for line in lines)

    rewarded = await export(api, batch_id=batch.batch_id, min_reward=1)
    assert users(rewarded) == ["What is the capital city of France?"] * 2
    failed = await export(api, batch_id=batch.batch_id, success=False)
    assert users(failed) == ["What is the capital city of Peru?"] * 2
    of_taskset = await export(api, taskset=batch.taskset, scenario="capital")
    assert len(of_taskset) == 4
    assert await export(api, batch_id=batch.batch_id, status="failed") == []
    assert await export(api, batch_id=batch.batch_id, environment="orders") == []


async def test_rl_episodes_carry_rewards_and_no_logprobs_of_the_scripted_model(
    api: httpx.AsyncClient, batch: Batch
) -> None:
    episodes = await export(api, format="rl", batch_id=batch.batch_id)

    assert sorted(episode["run_id"] for episode in episodes) == sorted(batch.run_ids)
    created = [episode["created_at"] for episode in episodes]
    assert created == sorted(created)
    for episode in episodes:
        france = episode["task"] == "France"
        assert episode["reward"] == (1.0 if france else 0.0)
        assert episode["success"] is france
        assert episode["args"] == {"country": episode["task"]}
        assert (episode["environment"], episode["scenario"], episode["model"]) == (
            "trivia",
            "capital",
            "scripted",
        )
        assert episode["batch_id"] == batch.batch_id and episode["stop_reason"] == "answered"
        assert episode["steps"] == 2 and episode["usage"]["model_calls"] == 2
        assert [item["evaluator"] for item in episode["evaluations"]] == ["scenario"]
        assert all("logprobs" not in message for message in episode["messages"])
        MESSAGES.validate_python(episode["messages"])


async def test_rl_episodes_carry_the_recorded_logprobs(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream, log_prob=True, stream=False)
    upstream.plan(model["model"], Reply(text="Lima it is"))
    run = await run_to_end(api, model_body(model, {"country": "Peru"}))

    [episode] = await export(api, format="rl", model=run["model"])
    assert episode["run_id"] == run["run_id"] and episode["reward"] == 1.0
    answer = episode["messages"][-1]
    assert answer["role"] == "assistant" and answer["content"] == "Lima it is"
    assert [item["token"] for item in answer["logprobs"]] == ["Lima ", "it ", "is"]
    assert [item["logprob"] for item in answer["logprobs"]] == [-0.5, -1.0, -1.5]
    [line] = await export(api, model=run["model"])
    assert_fine_tuning_example(line)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "csv"}, "format"),
        ({"status": "done"}, "status"),
        ({"min_reward": "high"}, "min_reward"),
        ({"min_reward": "nan"}, "min_reward"),
        ({"success": "maybe"}, "success"),
        ({"batch_id": "no-such-batch"}, "batch_id"),
        ({"taskset": "no-such-taskset"}, "taskset"),
        ({"environment": "tab\there"}, "environment"),
    ],
)
async def test_bad_filters_are_refused_naming_the_field(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/v1/exports", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]


async def test_another_projects_runs_are_never_exported(stack: Stack, batch: Batch) -> None:
    other = await stack.create_key(f"exports-other-{uuid.uuid4().hex[:6]}", Scope.task_read)
    async with stack.client(other) as theirs:
        assert await export(theirs) == []
        assert await export(theirs, format="rl", status="failed") == []
        refused = await theirs.get("/v1/exports", params={"batch_id": batch.batch_id})
        assert refused.status_code == 422


def cli_export(stack: Stack, output: Path, *options: str) -> Any:
    command = ["export", *options, "-o", str(output), "--api-url", stack.api_url]
    return build_parser().parse_args([*command, "--api-key", stack.api_key])


async def test_the_cli_writes_the_file_and_counts_the_runs(
    stack: Stack, batch: Batch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.jsonl"
    options = ["--format", "openai-chat", "--batch", batch.batch_id, "--min-reward", "1"]

    assert await run_export_command(cli_export(stack, output, *options)) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert_fine_tuning_example(line)
    assert f"wrote 2 runs to {output}" in capsys.readouterr().err


async def test_the_cli_says_which_filter_the_api_refused(stack: Stack, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    args = cli_export(stack, output, "--batch", "no-such-batch", "--failure")
    with pytest.raises(ExportCommandError, match=r"\(422\): query\.batch_id: no batch"):
        await run_export_command(args)
    assert not output.exists() and not output.with_name("out.jsonl.partial").exists()
