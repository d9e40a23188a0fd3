"""Every route of the OpenAPI document, dialects included, refuses another project's key,
a key without the scope it needs and a connection token of another run.

Each route has a rule here: what it addresses and the scope it needs. A new route without
one fails `test_every_route_has_a_rule`, so that whoever adds it says who may call it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from loopline.models import Scope
from tests.harness import Stack, answer_step, run_body, wait_for_run

READ, WRITE, ADMIN = Scope.task_read, Scope.task_write, Scope.admin
# What a route addresses: something of one project (another project's key: 404), or the
# caller's own project (another project's key is simply another caller).
OWNED = ("run", "batch", "taskset", "key", "task", "agent")


@dataclass(frozen=True)
class Rule:
    addresses: str
    scope: Scope
    body: Any = None
    query: dict[str, str] | None = None
    headers: dict[str, str] | None = None


TASK = {
    "slug": "fr",
    "scenario": "capital",
    "args": {"country": "France"},
    "env": {"name": "trivia"},
}
UPLOAD = {"name": "rules-set", "tasks": [TASK]}
LOG = {"entries": [{"message": "hello"}]}
ARTIFACTS = {"artifacts": [{"name": "b.txt", "content_base64": base64.b64encode(b"b").decode()}]}
INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
HUB = {"Environment-Name": "trivia"}
SESSION = {"Mcp-Session-Id": "{run_id}"}
RUNS = "/task-runs/api/projects/{project_id}/tasks/{task_id}/runs"
RUN = RUNS + "/{run_id}"

RULES: dict[tuple[str, str], Rule] = {
    # native: runs
    ("POST", "/v1/runs"): Rule(
        "project", WRITE, run_body("trivia", "capital", {"country": "Peru"}, answer_step("Lima"))
    ),
    ("GET", "/v1/runs"): Rule("project", READ),
    ("GET", "/v1/runs/{run_id}"): Rule("run", READ),
    ("PATCH", "/v1/runs/{run_id}"): Rule("run", WRITE, {"stage": "x"}),
    ("PUT", "/v1/runs/{run_id}/output"): Rule("run", WRITE, "x"),
    ("GET", "/v1/runs/{run_id}/events"): Rule("run", READ),
    ("POST", "/v1/runs/{run_id}/logs"): Rule("run", WRITE, LOG),
    ("GET", "/v1/runs/{run_id}/logs"): Rule("run", READ),
    ("POST", "/v1/runs/{run_id}/messages"): Rule("run", WRITE, {"content": "hi"}),
    ("POST", "/v1/runs/{run_id}/continue"): Rule(
        "run", WRITE, {"tool_results": [{"call_id": "c", "content": "x"}]}
    ),
    ("POST", "/v1/runs/{run_id}/cancel"): Rule("run", WRITE),
    ("POST", "/v1/runs/{run_id}/close"): Rule("run", WRITE),
    ("POST", "/v1/runs/{run_id}/command"): Rule("run", WRITE, {"method": "cancel"}),
    ("GET", "/v1/runs/{run_id}/connection_token"): Rule("run", READ),
    ("POST", "/v1/runs/{run_id}/replay"): Rule("run", WRITE, {"wait": False}),
    ("GET", "/v1/runs/{run_id}/replay-report"): Rule("run", READ),
    ("POST", "/v1/runs/{run_id}/forks"): Rule("run", WRITE, {"step": 0}),
    # native: artifacts
    ("PUT", "/v1/runs/{run_id}/artifacts/{name}"): Rule("run", WRITE, b"bytes"),
    ("POST", "/v1/runs/{run_id}/artifacts"): Rule("run", WRITE, ARTIFACTS),
    ("GET", "/v1/runs/{run_id}/artifacts"): Rule("run", READ),
    ("POST", "/v1/runs/{run_id}/artifacts/presign"): Rule("run", READ, {"name": "a.txt"}),
    # native: tasksets, batches, environments, keys
    ("POST", "/v1/tasksets/upload"): Rule("project", WRITE, UPLOAD),
    ("GET", "/v1/tasksets"): Rule("project", READ),
    ("GET", "/v1/tasksets/{taskset}"): Rule("taskset", READ),
    ("DELETE", "/v1/tasksets/{taskset}"): Rule("taskset", WRITE),
    ("POST", "/v1/batches"): Rule("project", WRITE, {"tasks": [TASK], "script": {"steps": [{}]}}),
    ("GET", "/v1/batches"): Rule("project", READ),
    ("GET", "/v1/batches/{batch_id}"): Rule("batch", READ),
    ("GET", "/v1/batches/{batch_id}/runs"): Rule("batch", READ),
    ("POST", "/v1/batches/{batch_id}/cancel"): Rule("batch", WRITE),
    ("DELETE", "/v1/batches/{batch_id}"): Rule("batch", WRITE),
    ("GET", "/v1/environments"): Rule("project", READ),
    ("GET", "/v1/environments/{name}"): Rule("project", READ),
    ("GET", "/v1/exports"): Rule("project", READ),
    ("POST", "/v1/keys"): Rule("project", ADMIN, {"name": "k"}),
    ("GET", "/v1/keys"): Rule("project", ADMIN),
    ("DELETE", "/v1/keys/{key_id}"): Rule("key", ADMIN),
    # environments over MCP
    ("POST", "/v1/environments/{name}/mcp"): Rule("project", WRITE, INITIALIZE),
    ("DELETE", "/v1/environments/{name}/mcp"): Rule("project", WRITE, headers=SESSION),
    # hud
    **{
        ("POST", path): Rule(
            "project",
            WRITE,
            {"env_name": "trivia", "scenario_name": "capital", "model": "gpt-4o"},
        )
        for path in ("/hud/agent/run",)
    },
    ("GET", "/hud/environments"): Rule("project", READ),
    ("GET", "/hud/environments/{env_name}"): Rule("project", READ),
    ("GET", "/hud/telemetry/traces/{run_id}"): Rule("run", READ),
    ("GET", "/hud/telemetry/trace/{run_id}"): Rule("run", READ),
    ("POST", "/hud/telemetry/traces/status"): Rule("project", READ, {"trace_ids": ["x"]}),
    ("POST", "/hud/tasks/upload"): Rule("project", WRITE, UPLOAD),
    ("POST", "/hud/tasks/evalsets/{evalset_id}/tasks"): Rule(
        "taskset", WRITE, {"tasks": [{"scenario_id": "trivia/capital"}]}
    ),
    ("GET", "/hud/telemetry/job/{batch_id}"): Rule("batch", READ),
    ("GET", "/hud/telemetry/job/{batch_id}/trace-ids"): Rule("batch", READ),
    ("POST", "/hud/v3/mcp"): Rule("project", WRITE, INITIALIZE, headers=HUB),
    ("DELETE", "/hud/v3/mcp"): Rule("project", WRITE, headers={**HUB, **SESSION}),
    ("POST", "/hud/trace/{trace_id}/enter"): Rule("project", WRITE),
    ("POST", "/hud/trace/{trace_id}/exit"): Rule("project", WRITE),
    ("POST", "/hud/trace/job/{job_id}/enter"): Rule("project", WRITE),
    # rl-gym
    ("POST", "/rl-gym/runs"): Rule(
        "project",
        WRITE,
        {
            "scenario_id": "rules-set",
            "task_ids": ["fr"],
            "model_config": {"model": "m", "api_key": "k"},
        },
    ),
    ("GET", "/rl-gym/runs"): Rule("project", READ),
    ("GET", "/rl-gym/runs/{batch_id}"): Rule("batch", READ),
    ("POST", "/rl-gym/runs/{batch_id}/cancel"): Rule("batch", WRITE),
    ("DELETE", "/rl-gym/runs/{batch_id}"): Rule("batch", WRITE),
    # task-runs
    ("GET", RUNS): Rule("task", READ),
    ("POST", RUNS): Rule("task", WRITE),
    ("GET", RUN): Rule("task", READ),
    ("PATCH", RUN): Rule("task", WRITE, {"stage": "x"}),
    ("POST", f"{RUN}/append_log"): Rule("task", WRITE, LOG),
    ("POST", f"{RUN}/artifacts"): Rule("task", WRITE, ARTIFACTS),
    ("POST", f"{RUN}/artifacts/presign"): Rule("task", READ, {"storage_path": "a.txt"}),
    ("POST", f"{RUN}/command"): Rule("task", WRITE, {"method": "cancel"}),
    ("GET", f"{RUN}/connection_token"): Rule("task", READ),
    ("GET", f"{RUN}/logs"): Rule("task", READ),
    ("POST", f"{RUN}/relay_message"): Rule("task", WRITE, {"text": "hi"}),
    ("GET", f"{RUN}/session_logs"): Rule("task", READ),
    ("PATCH", f"{RUN}/set_output"): Rule("task", WRITE, {"output": 1}),
    ("GET", f"{RUN}/stream"): Rule("task", READ),
    # agents-api
    ("POST", "/agents-api/agents/call"): Rule(
        "project",
        WRITE,
        {
            "agent": {"model": "gpt-4o"},
            "path": "p",
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    ("POST", "/agents-api/agents/continue"): Rule(
        "run",
        WRITE,
        {"log_id": "{run_id}", "messages": [{"role": "tool", "tool_call_id": "c", "content": "x"}]},
    ),
    ("POST", "/agents-api/agents"): Rule("project", WRITE, {"model": "gpt-4o", "path": "p"}),
    ("GET", "/agents-api/agents"): Rule("project", READ),
    ("GET", "/agents-api/agents/{agent_id}"): Rule("agent", READ),
    ("POST", "/agents-api/agents/{agent_id}/environments/{environment_name}"): Rule(
        "agent", WRITE, query={"version_id": "{version_id}"}
    ),
}
# hud's every endpoint is also under /hud/v1, with the same rule.
RULES |= {
    (method, path.replace("/hud/", "/hud/v1/", 1)): rule
    for (method, path), rule in list(RULES.items())
    if path.startswith("/hud/")
}
# Routes that need no key: health, the API's own documents, and signed download links.
OPEN = {
    ("GET", "/healthz"),
    ("GET", "/v1/artifacts/{run_id}/{name}"),
}


@dataclass
class World:
    """Project A's records, and the callers that must not reach them."""

    names: dict[str, str]
    callers: dict[str, str]

    def url(self, path: str) -> str:
        return path.format(**self.names)

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**self.names) if "{" in value else value
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.fill(item) for item in value]
        return value


@pytest.fixture(scope="module")
async def world(stack: Stack) -> World:
    ours, theirs = f"rules-a-{uuid.uuid4().hex[:6]}", f"rules-b-{uuid.uuid4().hex[:6]}"
    admin = await stack.create_key(ours, ADMIN)
    async with stack.client(admin) as http:
        run = await _run(http)
        other_run = await _run(http)
        await http.put(f"/v1/runs/{run}/artifacts/a.txt", content=b"a")
        taskset = (await http.post("/v1/tasksets/upload", json=UPLOAD)).json()["taskset_id"]
        batch = await http.post("/v1/batches", json={"taskset": taskset, "script": {"steps": [{}]}})
        agent = (
            await http.post("/agents-api/agents", json={"model": "gpt-4o", "path": "a"})
        ).json()
        token = (await http.get(f"/v1/runs/{other_run}/connection_token")).json()["token"]
        keys = (await http.get("/v1/keys")).json()
    names = {
        "run_id": run,
        "batch_id": batch.json()["batch_id"],
        "taskset": taskset,
        "evalset_id": taskset,
        "key_id": keys[0]["key_id"],
        "name": "a.txt",
        "project_id": ours,
        "task_id": "rules-set:fr",
        "agent_id": agent["id"],
        "version_id": agent["version_id"],
        "environment_name": "production",
        "env_name": "trivia",
        "trace_id": f"trace-{uuid.uuid4().hex[:8]}",
        "job_id": f"job-{uuid.uuid4().hex[:8]}",
    }
    callers = {
        "other project": await stack.create_key(theirs, ADMIN),
        f"without {READ.value}": await stack.create_key(ours, WRITE),
        f"without {WRITE.value}": await stack.create_key(ours, READ),
        f"without {ADMIN.value}": await stack.create_key(ours, READ, WRITE),
        "token of another run": token,
    }
    return World(names=names, callers=callers)


async def _run(http: httpx.AsyncClient) -> str:
    body = run_body("trivia", "capital", {"country": "Chad"}, answer_step("N'Djamena"))
    run_id: str = (await http.post("/v1/runs", json=body)).json()["run_id"]
    await wait_for_run(http, run_id)
    return run_id


async def openapi_routes(stack: Stack) -> set[tuple[str, str]]:
    async with stack.client() as http:
        document = (await http.get("/openapi.json")).json()
    return {
        (method.upper(), path.replace("{name:path}", "{name}"))
        for path, operations in document["paths"].items()
        for method in operations
    }


async def test_every_route_has_a_rule(stack: Stack) -> None:
    routes = await openapi_routes(stack)
    assert routes - set(RULES) - OPEN == set(), "routes without a rule in this file"
    assert set(RULES) - routes == set(), "rules of routes that do not exist"


async def call(
    stack: Stack, world: World, route: tuple[str, str], credential: str
) -> httpx.Response:
    method, path = route
    rule = RULES[route]
    request: dict[str, Any] = {
        "params": world.fill(rule.query or {}),
        "headers": world.fill(rule.headers or {}),
    }
    if isinstance(rule.body, bytes):
        request["content"] = rule.body
    elif rule.body is not None:
        request["json"] = world.fill(rule.body)
    async with stack.client(credential, timeout=30) as http:
        return await http.request(method, world.url(path), **request)


def expected(rule: Rule, caller: str) -> set[int]:
    if caller == "other project":
        return {404}
    if caller.startswith("without "):
        return {403} if caller == f"without {rule.scope.value}" else set()
    return {403}  # a token of another run: only its own run's events and commands


@pytest.mark.parametrize("route", sorted(RULES), ids=lambda route: f"{route[0]} {route[1]}")
async def test_a_route_refuses_who_may_not_call_it(
    stack: Stack, world: World, route: tuple[str, str]
) -> None:
    rule = RULES[route]
    for caller, credential in world.callers.items():
        if caller == "other project" and rule.addresses not in OWNED:
            continue  # another project's key calls it for its own project
        statuses = expected(rule, caller)
        if not statuses:
            continue  # this key has the scope the route needs
        answer = await call(stack, world, route, credential)
        assert answer.status_code in statuses, (caller, answer.status_code, answer.text[:300])
