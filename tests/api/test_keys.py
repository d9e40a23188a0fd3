"""API keys: 401 without a valid one, 403 without the scope, and nothing of another project
seen, changed or even confirmed to exist (404)."""

from __future__ import annotations

import sqlite3
import uuid

import httpx
import pytest

from loopline.models import Scope
from tests.harness import Stack, answer_step, run_body, wait_for_run

QUICK = run_body("trivia", "capital", {"country": "Japan"}, answer_step("Tokyo"))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def project_keys(stack: Stack) -> dict[str, str]:
    """Keys of two fresh projects, and a read-only and a write-only key of the first."""
    ours, theirs = f"ours-{uuid.uuid4().hex[:6]}", f"theirs-{uuid.uuid4().hex[:6]}"
    return {
        "ours": await stack.create_key(ours, Scope.task_read, Scope.task_write),
        "theirs": await stack.create_key(theirs, Scope.task_read, Scope.task_write),
        "reader": await stack.create_key(ours, Scope.task_read),
        "writer": await stack.create_key(ours, Scope.task_write),
        "admin": await stack.create_key(ours, Scope.admin),
    }


async def test_a_request_without_a_valid_key_gets_401_saying_how_to_get_one(
    stack: Stack, project_keys: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        missing = await anonymous.get("/v1/runs")
        garbage = await anonymous.get("/v1/runs", headers=bearer("ll_nope"))
        wrong_secret = project_keys["ours"][:-4] + "0000"
        guessed = await anonymous.get("/v1/runs", headers=bearer(wrong_secret))
        health = await anonymous.get("/healthz")

    assert missing.status_code == 401
    assert "loopline keys create" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert garbage.status_code == guessed.status_code == 401
    assert "not valid" in guessed.json()["detail"]
    assert health.status_code == 200


async def test_scopes_limit_what_a_key_may_do(stack: Stack, project_keys: dict[str, str]) -> None:
    async with stack.client(project_keys["ours"]) as ours:
        run_id = (await ours.post("/v1/runs", json=QUICK)).json()["run_id"]
    async with stack.client(project_keys["reader"]) as reader:
        assert (await reader.get(f"/v1/runs/{run_id}")).status_code == 200
        refused = await reader.post("/v1/runs", json=QUICK)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "this API key lacks the 'task:write' scope"
        assert (await reader.post(f"/v1/runs/{run_id}/cancel")).status_code == 403
        upload = {"name": "x", "tasks": [{"scenario": "capital", "env": {"name": "trivia"}}]}
        assert (await reader.post("/v1/tasksets/upload", json=upload)).status_code == 403
    async with stack.client(project_keys["writer"]) as writer:
        assert (await writer.get(f"/v1/runs/{run_id}")).status_code == 403
        assert (await writer.get("/v1/environments")).status_code == 403
        assert (await writer.post("/v1/runs", json=QUICK)).status_code == 201
        assert (await writer.get("/v1/keys")).status_code == 403
    async with stack.client(project_keys["admin"]) as admin:
        # admin holds every scope of its project
        assert (await admin.get(f"/v1/runs/{run_id}")).status_code == 200
        assert (await admin.post("/v1/runs", json=QUICK)).status_code == 201


async def test_another_projects_runs_batches_and_tasksets_are_not_found(
    stack: Stack, project_keys: dict[str, str]
) -> None:
    taskset = {
        "name": "shared-name",
        "tasks": [
            {
                "slug": "japan",
                "scenario": "capital",
                "args": {"country": "Japan"},
                "env": {"name": "trivia"},
            }
        ],
    }
    async with stack.client(project_keys["ours"]) as ours:
        run_id = (await ours.post("/v1/runs", json=QUICK)).json()["run_id"]
        await wait_for_run(ours, run_id)
        assert (await ours.post("/v1/tasksets/upload", json=taskset)).status_code == 200
        batch = await ours.post(
            "/v1/batches",
            json={"taskset": "shared-name", "script": {"steps": [{"content": "Tokyo"}]}},
        )
        batch_id = batch.json()["batch_id"]
        ours_listed = (await ours.get("/v1/runs")).json()

    async with stack.client(project_keys["theirs"]) as theirs:
        unknown = await theirs.get("/v1/runs/no-such-run")
        for method, path in [
            ("GET", f"/v1/runs/{run_id}"),
            ("GET", f"/v1/runs/{run_id}/events"),
            ("GET", f"/v1/runs/{run_id}/logs"),
            ("GET", f"/v1/runs/{run_id}/artifacts"),
            ("GET", f"/v1/runs/{run_id}/connection_token"),
            ("PATCH", f"/v1/runs/{run_id}"),
            ("POST", f"/v1/runs/{run_id}/cancel"),
            ("POST", f"/v1/runs/{run_id}/messages"),
        ]:
            body = {"stage": "x"} if method == "PATCH" else {"content": "hi"}
            answer = await theirs.request(method, path, json=None if method == "GET" else body)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["detail"] == f"no run {run_id!r}"
        assert unknown.json()["detail"] == "no run 'no-such-run'"

        for method, path in [
            ("GET", f"/v1/batches/{batch_id}"),
            ("GET", f"/v1/batches/{batch_id}/runs"),
            ("POST", f"/v1/batches/{batch_id}/cancel"),
            ("DELETE", f"/v1/batches/{batch_id}"),
        ]:
            assert (await theirs.request(method, path)).status_code == 404, path
        assert (await theirs.get("/v1/tasksets/shared-name")).status_code == 404
        assert (await theirs.get("/v1/runs")).json()["total"] == 0
        assert (await theirs.get("/v1/batches")).json()["total"] == 0
        assert (await theirs.get("/v1/tasksets")).json()["total"] == 0
        # Their own taskset may have the same name; using our run id is a conflict, not ours.
        assert (await theirs.post("/v1/tasksets/upload", json=taskset)).status_code == 200
        taken = await theirs.post("/v1/runs", json={**QUICK, "run_id": run_id})
        assert taken.status_code == 409

    assert ours_listed["total"] >= 1
    assert {run["project"] for run in ours_listed["runs"]} == {ours_listed["runs"][0]["project"]}
    assert ours_listed["runs"][0]["project"].startswith("ours-")


async def test_an_admin_manages_its_projects_keys(
    stack: Stack, project_keys: dict[str, str]
) -> None:
    async with stack.client(project_keys["admin"]) as admin:
        made = await admin.post("/v1/keys", json={"name": "ci", "scopes": ["task:read"]})
        assert made.status_code == 201
        new = made.json()
        listed = (await admin.get("/v1/keys")).json()
        async with stack.client(new["key"]) as ci:
            assert (await ci.get("/v1/runs")).status_code == 200
            revoked = await admin.delete(f"/v1/keys/{new['key_id']}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
            assert (await ci.get("/v1/runs")).status_code == 401
        their_id = project_keys["theirs"].split("_")[1]
        assert (await admin.delete(f"/v1/keys/{their_id}")).status_code == 404

    assert new["key"].startswith(f"ll_{new['key_id']}_")
    assert {key["project"] for key in listed} == {new["project"]}
    assert all("key" not in key for key in listed)
    assert new["key_id"] in {key["key_id"] for key in listed}


async def test_keys_are_stored_only_as_hashes(stack: Stack) -> None:
    key = await stack.create_key("hashing", Scope.task_read)
    secret = key.rsplit("_", 1)[1]
    with sqlite3.connect(stack.workdir / "loopline.db") as db:
        rows = db.execute("SELECT * FROM api_keys").fetchall()
    assert rows and not any(secret in str(value) for row in rows for value in row)


async def test_a_connection_token_is_not_a_key(stack: Stack, api: httpx.AsyncClient) -> None:
    run_id = (await api.post("/v1/runs", json=QUICK)).json()["run_id"]
    token = (await api.get(f"/v1/runs/{run_id}/connection_token")).json()["token"]
    async with httpx.AsyncClient(base_url=stack.api_url, headers=bearer(token)) as holder:
        assert (await holder.get(f"/v1/runs/{run_id}/events")).status_code == 200
        assert (await holder.get(f"/v1/runs/{run_id}")).status_code == 403
        assert (await holder.get("/v1/runs")).status_code == 403
        assert (await holder.post("/v1/runs", json=QUICK)).status_code == 403
