"""Native API v1: a run's artifacts and their signed download links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import FileResponse

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from loopline.models import (
    ARTIFACT_NAME_MAX_CHARS,
    ARTIFACT_NAME_PATTERN,
    ArtifactBatch,
    ArtifactInfo,
    PresignRequest,
    SignedURL,
)

router = APIRouter(tags=["artifacts"], route_class=DocumentedRoute)
ArtifactName = Annotated[
    str,
    Path(
        pattern=ARTIFACT_NAME_PATTERN,
        max_length=ARTIFACT_NAME_MAX_CHARS,
        description="A relative path of letters, digits, '_', '-', '.'; no segment starts "
        "with a dot.",
    ),
]


# OpenAPI ignores a parameter named Content-Type: the body's media type documents it.
RAW_BODY = {
    "requestBody": {
        "description": "The file's bytes; their Content-Type is kept as the artifact's.",
        "required": False,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put("/v1/runs/{run_id}/artifacts/{name:path}", openapi_extra=RAW_BODY)
async def upload_artifact(
    run_id: str,
    name: ArtifactName,
    request: Request,
    svc: Svc,
    who: Who,
    content_type: Annotated[
        str, Header(max_length=200, include_in_schema=False)
    ] = "application/octet-stream",
) -> ArtifactInfo:
    """Upload one file as the request body (empty is a file of 0 bytes); the same name
    again replaces it."""
    return await svc.artifacts.upload(who, run_id, name, request.stream(), content_type)


@router.post("/v1/runs/{run_id}/artifacts")
async def upload_artifacts(
    run_id: str, batch: ArtifactBatch, svc: Svc, who: Who
) -> list[ArtifactInfo]:
    """Upload several small files at once, base64-encoded."""
    return await svc.artifacts.upload_batch(who, run_id, batch)


@router.get("/v1/runs/{run_id}/artifacts")
async def list_artifacts(run_id: str, svc: Svc, who: Who) -> list[ArtifactInfo]:
    """The run's artifact manifest."""
    return await svc.artifacts.manifest(who, run_id)


@router.post("/v1/runs/{run_id}/artifacts/presign")
async def presign(
    run_id: str, request: PresignRequest, http: Request, svc: Svc, who: Who
) -> SignedURL:
    """A download URL that works without credentials until it expires."""
    return await svc.artifacts.presign(who, run_id, request, str(http.base_url))


@router.get("/v1/artifacts/{run_id}/{name:path}")
async def download(
    run_id: str,
    name: str,
    svc: Svc,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(max_length=128)],
) -> FileResponse:
    """Where a signed URL leads (no other credentials needed)."""
    artifact, path = await svc.artifacts.download(run_id, name, expires, signature)
    return FileResponse(path, media_type=artifact.content_type, filename=name.rsplit("/", 1)[-1])
