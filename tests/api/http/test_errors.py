"""Service errors become one HTTP answer each, in one shape; refusals echo no secret and
are written even when the input held numbers JSON cannot hold."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, SecretStr

from api.http.errors import install_error_handlers
from api.services.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from loopline.store import RunNotFoundError

RAISED: dict[str, ServiceError | LookupError] = {
    "invalid": Invalid(["body", "args", "country"], "say a country"),
    "unauthenticated": Unauthenticated("send an API key"),
    "forbidden": Forbidden("this API key lacks the 'task:write' scope"),
    "not-found": NotFound("no run 'x'"),
    "store-not-found": RunNotFoundError("no run 'y'"),
    "conflict": Conflict("run id 'x' is already used"),
    "too-large": TooLarge("over the limit"),
    "unavailable": Unavailable("Temporal is down"),
}


class Body(BaseModel):
    count: int = Field(ge=0)
    api_key: SecretStr | None = None


def app() -> FastAPI:
    served = FastAPI()
    install_error_handlers(served)

    @served.get("/raise/{kind}")
    async def raise_(kind: str) -> None:
        raise RAISED[kind]

    @served.post("/body")
    async def body(payload: Body) -> dict[str, Any]:
        return {}

    return served


async def answer(method: str, path: str, **request: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        return await http.request(method, path, **request)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("invalid", 422),
        ("unauthenticated", 401),
        ("forbidden", 403),
        ("not-found", 404),
        ("store-not-found", 404),
        ("conflict", 409),
        ("too-large", 413),
        ("unavailable", 503),
    ],
)
async def test_each_service_error_has_its_status(kind: str, status: int) -> None:
    response = await answer("GET", f"/raise/{kind}")
    assert response.status_code == status
    detail = response.json()["detail"]
    if kind == "invalid":
        assert detail == [
            {"loc": ["body", "args", "country"], "msg": "say a country", "type": "invalid"}
        ]
    else:
        assert detail == str(RAISED[kind])
    if kind == "unauthenticated":
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_refusal_masks_secrets_and_writes_numbers_json_lacks() -> None:
    content = b'{"count": NaN, "api_key": "sk-do-not-echo", "extra": Infinity}'
    response = await answer(
        "POST", "/body", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "sk-do-not-echo" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "count"]
