"""What callers attach to a run: logs, outputs and fields, artifacts behind signed URLs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.harness import answer_step, run_body, run_to_end


async def finished_run(api: httpx.AsyncClient) -> str:
    body = run_body("trivia", "capital", {"country": "Kenya"}, answer_step("Nairobi."))
    run: dict[str, str] = await run_to_end(api, body)
    return run["run_id"]


async def test_logs_append_once_and_download_as_jsonl(api: httpx.AsyncClient) -> None:
    run_id = await finished_run(api)
    entries = [
        {"entry_id": "build-1", "level": "info", "message": "pip install", "source": "ci"},
        {"entry_id": "build-2", "level": "error", "message": "1 test failed", "data": {"n": 1}},
    ]
    first = await api.post(f"/v1/runs/{run_id}/logs", json={"entries": entries})
    assert first.json() == {"appended": 2, "duplicates": 0}
    retry = await api.post(f"/v1/runs/{run_id}/logs", json={"entries": entries})
    assert retry.json() == {"appended": 0, "duplicates": 2}

    response = await api.get(f"/v1/runs/{run_id}/logs")
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    logged = [line["data"]["message"] for line in lines if line["data"].get("source") == "ci"]
    assert logged == ["pip install"]
    assert [line["data"]["message"] for line in lines][-2:] == ["pip install", "1 test failed"]
    assert all(line["type"] == "log" for line in lines)

    bad = await api.post(f"/v1/runs/{run_id}/logs", json={"entries": [{"level": "loud"}]})
    assert bad.status_code == 422


async def test_times_are_iso_8601_and_never_unix_seconds(api: httpx.AsyncClient) -> None:
    run_id = await finished_run(api)
    entry = {"message": "late", "timestamp": "2026-01-31T12:00:00Z"}
    iso = await api.post(f"/v1/runs/{run_id}/logs", json={"entries": [entry]})
    seconds = await api.post(
        f"/v1/runs/{run_id}/logs", json={"entries": [{**entry, "timestamp": 1769860800}]}
    )
    query = await api.get(f"/v1/runs/{run_id}/events", params={"until": "1769860800"})

    assert iso.status_code == 200, iso.text
    for refused in (seconds, query):
        assert refused.status_code == 422
        assert "write the time as ISO 8601" in refused.text


async def test_patch_fields_and_output(api: httpx.AsyncClient) -> None:
    run_id = await finished_run(api)
    patched = await api.patch(
        f"/v1/runs/{run_id}",
        json={
            "stage": "review",
            "branch": "fix/kenya",
            "client_state": {"pr": 12},
            "error_message": "lint warnings",
        },
    )
    assert patched.status_code == 200, patched.text
    view = patched.json()
    assert (view["stage"], view["branch"], view["client_state"], view["error_message"]) == (
        "review",
        "fix/kenya",
        {"pr": 12},
        "lint warnings",
    )
    output = await api.put(f"/v1/runs/{run_id}/output", json={"pr_url": "https://x/pr/12"})
    assert output.json()["output"] == {"pr_url": "https://x/pr/12"}
    events = (await api.get(f"/v1/runs/{run_id}/events", params={"event_types": "patch"})).json()
    assert [e["data"] for e in events][-1] == {"output": {"pr_url": "https://x/pr/12"}}

    refused = await api.patch(f"/v1/runs/{run_id}", json={"status": "running"})
    assert refused.status_code == 422
    assert "owns its status" in refused.json()["detail"][0]["msg"]
    missing = await api.patch("/v1/runs/no-such-run", json={"stage": "x"})
    assert missing.status_code == 404


async def test_artifacts_upload_manifest_and_signed_download(api: httpx.AsyncClient) -> None:
    run_id = await finished_run(api)
    report = b"# Report\nAll good.\n"
    put = await api.put(
        f"/v1/runs/{run_id}/artifacts/reports/summary.md",
        content=report,
        headers={"content-type": "text/markdown"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["sha256"] == hashlib.sha256(report).hexdigest()
    batch = await api.post(
        f"/v1/runs/{run_id}/artifacts",
        json={
            "artifacts": [
                {
                    "name": "data.json",
                    "content_base64": base64.b64encode(b"{}").decode(),
                    "content_type": "application/json",
                }
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    manifest = (await api.get(f"/v1/runs/{run_id}/artifacts")).json()
    assert [(a["name"], a["size"]) for a in manifest] == [
        ("data.json", 2),
        ("reports/summary.md", len(report)),
    ]

    signed = await api.post(
        f"/v1/runs/{run_id}/artifacts/presign", json={"name": "reports/summary.md"}
    )
    url = signed.json()["url"]
    async with httpx.AsyncClient() as anonymous:
        download = await anonymous.get(url)
        assert download.status_code == 200
        assert download.content == report
        assert download.headers["content-type"].startswith("text/markdown")

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        later = int(query["expires"][0]) + 3600
        forged = parts._replace(query=f"expires={later}&signature={query['signature'][0]}")
        assert (await anonymous.get(forged.geturl())).status_code == 403

        short = await api.post(
            f"/v1/runs/{run_id}/artifacts/presign",
            json={"name": "reports/summary.md", "expires_in": 1},
        )
        await asyncio.sleep(2.1)
        expired = await anonymous.get(short.json()["url"])
        assert expired.status_code == 403
        assert "expired" in expired.json()["detail"]


async def test_artifact_input_errors(api: httpx.AsyncClient) -> None:
    run_id = await finished_run(api)
    escape = await api.put(f"/v1/runs/{run_id}/artifacts/.secret", content=b"x")
    assert escape.status_code == 422
    not_base64 = await api.post(
        f"/v1/runs/{run_id}/artifacts",
        json={"artifacts": [{"name": "a.bin", "content_base64": "***"}]},
    )
    assert not_base64.status_code == 422
    assert "not base64" in not_base64.json()["detail"][0]["msg"]
    # Padding after a whole group, which Python's decoder would take, is not base64.
    overpadded = await api.post(
        f"/v1/runs/{run_id}/artifacts",
        json={"artifacts": [{"name": "a.bin", "content_base64": "0000="}]},
    )
    assert overpadded.status_code == 422
    unknown = await api.post(f"/v1/runs/{run_id}/artifacts/presign", json={"name": "nope.txt"})
    assert unknown.status_code == 404


async def test_connection_token_grants_one_runs_events_and_commands(
    api: httpx.AsyncClient,
) -> None:
    run_id = await finished_run(api)
    other_id = await finished_run(api)
    token = (await api.get(f"/v1/runs/{run_id}/connection_token")).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    assert (await api.get(f"/v1/runs/{run_id}/events", headers=bearer)).status_code == 200
    as_param = await api.get(f"/v1/runs/{run_id}/events", params={"token": token})
    assert as_param.status_code == 200
    assert (await api.get(f"/v1/runs/{other_id}/events", headers=bearer)).status_code == 403
    assert (await api.get(f"/v1/runs/{run_id}", headers=bearer)).status_code == 403
    assert (await api.get("/v1/runs", headers=bearer)).status_code == 403
    forged = {"Authorization": f"Bearer {token[:-4]}AAAA"}
    assert (await api.get(f"/v1/runs/{run_id}/events", headers=forged)).status_code == 401
