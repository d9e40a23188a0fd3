"""Request bodies are bounded and hold only numbers JSON can: a 413 or a 422 before any
route sees them, and never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from api.http.limits import BodyLimits

LIMIT = 10_000


def app() -> FastAPI:
    served = FastAPI()
    served.add_middleware(BodyLimits, max_bytes=LIMIT)

    @served.post("/v1/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @served.put("/v1/runs/r1/artifacts/{name:path}")
    async def upload(name: str, request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return served


async def send(method: str, path: str, **request: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        return await http.request(method, path, **request)


async def test_a_body_over_the_limit_is_a_413_saying_where_large_data_goes() -> None:
    big = {"text": "x" * LIMIT}
    answer = await send("POST", "/v1/echo", json=big)
    assert answer.status_code == 413
    assert "LOOPLINE_MAX_REQUEST_BYTES" in answer.json()["detail"]
    assert "artifact" in answer.json()["detail"]

    async def chunks() -> Any:
        for _ in range(3):
            yield b"x" * 6000  # no Content-Length: the stream itself is counted

    streamed = await send("POST", "/v1/echo", content=chunks())
    assert streamed.status_code == 413


async def test_an_artifact_upload_is_not_held_to_the_request_limit() -> None:
    answer = await send("PUT", "/v1/runs/r1/artifacts/big.bin", content=b"x" * (LIMIT * 5))
    assert answer.json() == {"received": LIMIT * 5}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "1" * 5000])
async def test_numbers_json_cannot_hold_are_a_422(number: str) -> None:
    answer = await send(
        "POST",
        "/v1/echo",
        content=f'{{"value": {number}}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body"]


async def test_ordinary_json_passes_unchanged() -> None:
    body = {"value": 1.5e30, "note": "NaN is a word here", "count": 12}
    answer = await send("POST", "/v1/echo", json=body)
    assert answer.status_code == 200 and answer.json() == body
