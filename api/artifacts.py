"""Files attached to a run: upload, manifest, and downloads by expiring signed URL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from api.access import Signer
from api.errors import ArtifactNotFoundError, InvalidRequestError, TooLargeError
from loopline.blobs import BlobStore
from loopline.database import utcnow
from loopline.models import ArtifactBatch, ArtifactInfo, PresignRequest, SignedURL
from loopline.store import TraceStore

# Uploads are spooled in memory up to this size, then on disk.
SPOOL_BYTES = 8 * 1024 * 1024


class ArtifactService:
    def __init__(self, store: TraceStore, blobs: BlobStore, signer: Signer, max_bytes: int) -> None:
        self._store = store
        self._blobs = blobs
        self._signer = signer
        self._max_bytes = max_bytes

    async def upload(
        self, run_id: str, name: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> ArtifactInfo:
        await self._store.get_run(run_id)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            digest = hashlib.sha256()
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > self._max_bytes:
                    raise TooLargeError(
                        f"artifact {name!r} is larger than {self._max_bytes} bytes "
                        "(LOOPLINE_MAX_ARTIFACT_BYTES)"
                    )
                digest.update(chunk)
                spool.write(chunk)
            spool.seek(0)
            return await self._keep(run_id, name, spool, size, digest.hexdigest(), content_type)

    async def upload_batch(self, run_id: str, batch: ArtifactBatch) -> list[ArtifactInfo]:
        await self._store.get_run(run_id)
        decoded = []
        for index, item in enumerate(batch.artifacts):
            try:
                content = base64.b64decode(item.content_base64, validate=True)
            except binascii.Error as error:
                raise InvalidRequestError(
                    ["body", "artifacts", index, "content_base64"],
                    f"artifact {item.name!r}: content_base64 is not base64 ({error})",
                ) from error
            if len(content) > self._max_bytes:
                raise TooLargeError(
                    f"artifact {item.name!r} is larger than {self._max_bytes} bytes"
                )
            decoded.append((item, content))
        kept = []
        for item, content in decoded:
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                spool.write(content)
                spool.seek(0)
                digest = hashlib.sha256(content).hexdigest()
                kept.append(
                    await self._keep(
                        run_id, item.name, spool, len(content), digest, item.content_type
                    )
                )
        return kept

    async def manifest(self, run_id: str) -> list[ArtifactInfo]:
        await self._store.get_run(run_id)
        return await self._store.artifacts(run_id)

    async def presign(self, run_id: str, request: PresignRequest, base_url: str) -> SignedURL:
        artifact = await self._find(run_id, request.name)
        expires = int(time.time()) + request.expires_in
        filename = Path(artifact.name).name
        url = self._blobs.presigned_url(artifact.storage_path, request.expires_in, filename)
        if url is None:
            query = urlencode(
                {
                    "expires": expires,
                    "signature": self._signer.url_signature(run_id, artifact.name, expires),
                }
            )
            path = f"/v1/artifacts/{quote(run_id)}/{quote(artifact.name)}"
            url = f"{base_url.rstrip('/')}{path}?{query}"
        return SignedURL(url=url, expires_at=datetime.fromtimestamp(expires, UTC))

    async def download(
        self, run_id: str, name: str, expires: int, signature: str
    ) -> tuple[ArtifactInfo, Path]:
        self._signer.check_url(run_id, name, expires, signature)
        artifact = await self._find(run_id, name)
        path = self._blobs.local_file(artifact.storage_path)
        if path is None:
            raise ArtifactNotFoundError(f"artifact {name!r} of run {run_id!r} has no stored bytes")
        return artifact, path

    async def _find(self, run_id: str, name: str) -> ArtifactInfo:
        await self._store.get_run(run_id)
        found = await self._store.artifacts(run_id, name)
        if not found:
            raise ArtifactNotFoundError(f"run {run_id!r} has no artifact {name!r}")
        return found[0]

    async def _keep(
        self,
        run_id: str,
        name: str,
        source: IO[bytes],
        size: int,
        sha256: str,
        content_type: str,
    ) -> ArtifactInfo:
        storage_path = f"runs/{run_id}/artifacts/{name}"
        await self._blobs.put(storage_path, source, content_type)
        artifact = ArtifactInfo(
            name=name,
            storage_path=storage_path,
            size=size,
            sha256=sha256,
            content_type=content_type,
            created_at=utcnow(),
        )
        await self._store.put_artifact(run_id, artifact, f"artifact:{uuid.uuid4().hex}")
        return artifact
