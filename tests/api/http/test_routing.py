"""URLs find their routes as the OpenAPI document reads them: a literal path before a
template that also fits, and a 405 whose `Allow` names every method the path takes."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from api.http.routing import DocumentedRoute


def app() -> FastAPI:
    router = APIRouter(prefix="/things", route_class=DocumentedRoute)

    @router.get("/{name}")
    async def read(name: str) -> dict[str, str]:
        return {"read": name}

    @router.delete("/{name}")
    async def delete(name: str) -> dict[str, str]:
        return {"deleted": name}

    @router.post("/upload")
    async def upload() -> dict[str, str]:
        return {"uploaded": "yes"}

    @router.put("/{name}/parts/{part}")
    async def put_part(name: str, part: str) -> dict[str, str]:
        return {"part": part}

    @router.post("/{name}/parts/presign")
    async def presign(name: str) -> dict[str, str]:
        return {"presigned": name}

    application = FastAPI()
    application.include_router(router)
    return application


async def send(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_a_templated_path_still_serves_the_urls_no_literal_path_takes() -> None:
    assert (await send("GET", "/things/kettle")).json() == {"read": "kettle"}
    assert (await send("PUT", "/things/kettle/parts/lid")).json() == {"part": "lid"}
    assert (await send("POST", "/things/upload")).json() == {"uploaded": "yes"}


async def test_a_literal_path_does_not_yield_its_url_to_a_template_that_fits() -> None:
    read = await send("GET", "/things/upload")
    assert read.status_code == 405
    assert read.headers["allow"] == "POST"
    upload = await send("PUT", "/things/kettle/parts/presign")
    assert upload.status_code == 405
    assert upload.headers["allow"] == "POST"


async def test_a_405_allows_every_method_of_the_path_not_only_the_first_route() -> None:
    response = await send("PATCH", "/things/kettle")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
