"""Native API v1: a run's artifacts and their signed download links."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse

from api.access import RunRead, RunWrite
from api.deps import Artifacts
from api.errors import InvalidRequestError
from loopline.models import (
    ARTIFACT_NAME_PATTERN,
    ArtifactBatch,
    ArtifactInfo,
    PresignRequest,
    SignedURL,
)

router = APIRouter(tags=["artifacts"])


@router.put("/v1/runs/{run_id}/artifacts/{name:path}", dependencies=[RunWrite])
async def upload_artifact(
    run_id: str,
    name: str,
    request: Request,
    artifacts: Artifacts,
    content_type: Annotated[str, Header()] = "application/octet-stream",
) -> ArtifactInfo:
    """Upload one file as the request body; the same name again replaces it."""
    if not re.fullmatch(ARTIFACT_NAME_PATTERN, name):
        raise InvalidRequestError(
            ["path", "name"],
            f"artifact name {name!r} must be a relative path of letters, digits, '_', '-', "
            "'.', with segments that do not start with a dot",
        )
    return await artifacts.upload(run_id, name, request.stream(), content_type)


@router.post("/v1/runs/{run_id}/artifacts", dependencies=[RunWrite])
async def upload_artifacts(
    run_id: str, batch: ArtifactBatch, artifacts: Artifacts
) -> list[ArtifactInfo]:
    """Upload several small files at once, base64-encoded."""
    return await artifacts.upload_batch(run_id, batch)


@router.get("/v1/runs/{run_id}/artifacts", dependencies=[RunRead])
async def list_artifacts(run_id: str, artifacts: Artifacts) -> list[ArtifactInfo]:
    """The run's artifact manifest."""
    return await artifacts.manifest(run_id)


@router.post("/v1/runs/{run_id}/artifacts/presign", dependencies=[RunRead])
async def presign(
    run_id: str, request: PresignRequest, http: Request, artifacts: Artifacts
) -> SignedURL:
    """A download URL that works without credentials until it expires."""
    return await artifacts.presign(run_id, request, str(http.base_url))


@router.get("/v1/artifacts/{run_id}/{name:path}")
async def download(
    run_id: str,
    name: str,
    artifacts: Artifacts,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
) -> FileResponse:
    """Where a signed URL leads (no other credentials needed)."""
    artifact, path = await artifacts.download(run_id, name, expires, signature)
    return FileResponse(path, media_type=artifact.content_type, filename=name.rsplit("/", 1)[-1])
