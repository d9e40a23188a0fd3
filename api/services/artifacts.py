"""Files attached to a run: upload, manifest, and downloads by expiring signed URL.

Bytes are kept under a storage path made from a hash of the artifact's name, so any two
names (`a` and `a/b`, names of any length the API accepts) have their own blobs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from api.services.access import Access, Caller, Need
from api.services.errors import Invalid, NotFound, TooLarge
from api.services.signing import Signer
from loopline.blobs import BlobStore
from loopline.models import (
    DEFAULT_LINK_SECONDS,
    ArtifactBatch,
    ArtifactInfo,
    PresignRequest,
    SignedURL,
)
from loopline.models.http import BASE64_PATTERN
from loopline.store import TraceStore
from loopline.store.database import utcnow

# Uploads are spooled in memory up to this size, then on disk.
SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ArtifactLink:
    name: str
    content_type: str
    url: str


@dataclass
class ArtifactService:
    store: TraceStore
    access: Access
    blobs: BlobStore
    signer: Signer
    max_bytes: int

    async def upload(
        self,
        caller: Caller,
        run_id: str,
        name: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
    ) -> ArtifactInfo:
        """One file from a stream; the same name again replaces it."""
        await self.access.run(caller, run_id, Need.write)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            digest = hashlib.sha256()
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(
                        f"artifact {name!r} is larger than {self.max_bytes} bytes "
                        "(LOOPLINE_MAX_ARTIFACT_BYTES)"
                    )
                digest.update(chunk)
                spool.write(chunk)
            spool.seek(0)
            return await self._keep(run_id, name, spool, size, digest.hexdigest(), content_type)

    async def upload_batch(
        self, caller: Caller, run_id: str, batch: ArtifactBatch
    ) -> list[ArtifactInfo]:
        """Several small files, base64-encoded; all are decoded before any is kept."""
        await self.access.run(caller, run_id, Need.write)
        decoded = []
        for index, item in enumerate(batch.artifacts):
            where: list[str | int] = ["body", "artifacts", index, "content_base64"]
            # The documented pattern, which the decoder alone would not hold to: it also
            # takes padding after a whole quantum ("0000=").
            if not re.fullmatch(BASE64_PATTERN, item.content_base64):
                raise Invalid(
                    where,
                    f"artifact {item.name!r}: content_base64 is not base64: send standard padded "
                    "base64 (A-Z, a-z, 0-9, + and /, in groups of four, '=' only to end the last)",
                )
            try:
                content = base64.b64decode(item.content_base64, validate=True)
            except (binascii.Error, ValueError) as error:
                raise Invalid(
                    where, f"artifact {item.name!r}: content_base64 is not base64 ({error})"
                ) from error
            if len(content) > self.max_bytes:
                raise TooLarge(f"artifact {item.name!r} is larger than {self.max_bytes} bytes")
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

    async def manifest(self, caller: Caller, run_id: str) -> list[ArtifactInfo]:
        await self.access.run(caller, run_id, Need.read)
        return await self.store.artifacts(run_id)

    async def presign(
        self, caller: Caller, run_id: str, request: PresignRequest, base_url: str
    ) -> SignedURL:
        """A download URL that works without credentials until it expires."""
        await self.access.run(caller, run_id, Need.read)
        artifact = await self._find(run_id, request.name)
        return self._signed_url(run_id, artifact, request.expires_in, base_url)

    async def presign_stored(
        self, caller: Caller, run_id: str, storage_path: str, base_url: str
    ) -> SignedURL:
        """The download URL of the artifact at `storage_path` (or of that name)."""
        for artifact in await self.manifest(caller, run_id):
            if storage_path in {artifact.storage_path, artifact.name}:
                return self._signed_url(run_id, artifact, DEFAULT_LINK_SECONDS, base_url)
        raise NotFound(f"run {run_id!r} has no artifact at {storage_path!r}")

    async def links(self, caller: Caller, run_id: str, base_url: str) -> list[ArtifactLink]:
        """Every artifact of the run with a download URL of the default lifetime."""
        return [
            ArtifactLink(
                name=artifact.name,
                content_type=artifact.content_type,
                url=self._signed_url(run_id, artifact, DEFAULT_LINK_SECONDS, base_url).url,
            )
            for artifact in await self.manifest(caller, run_id)
        ]

    async def download(
        self, run_id: str, name: str, expires: int, signature: str
    ) -> tuple[ArtifactInfo, Path]:
        """Where a signed URL leads; the signature is the credential."""
        self.signer.check_url(run_id, name, expires, signature)
        artifact = await self._find(run_id, name)
        path = self.blobs.local_file(artifact.storage_path)
        if path is None:
            raise NotFound(f"artifact {name!r} of run {run_id!r} has no stored bytes")
        return artifact, path

    def _signed_url(
        self, run_id: str, artifact: ArtifactInfo, expires_in: int, base_url: str
    ) -> SignedURL:
        expires = int(time.time()) + expires_in
        filename = Path(artifact.name).name
        url = self.blobs.presigned_url(artifact.storage_path, expires_in, filename)
        if url is None:
            query = urlencode(
                {
                    "expires": expires,
                    "signature": self.signer.url_signature(run_id, artifact.name, expires),
                }
            )
            path = f"/v1/artifacts/{quote(run_id)}/{quote(artifact.name)}"
            url = f"{base_url.rstrip('/')}{path}?{query}"
        return SignedURL(url=url, expires_at=datetime.fromtimestamp(expires, UTC))

    async def _find(self, run_id: str, name: str) -> ArtifactInfo:
        found = await self.store.artifacts(run_id, name)
        if not found:
            raise NotFound(f"run {run_id!r} has no artifact {name!r}")
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
        storage_path = f"runs/{run_id}/artifacts/{hashlib.sha256(name.encode()).hexdigest()}"
        await self.blobs.put(storage_path, source, content_type)
        artifact = ArtifactInfo(
            name=name,
            storage_path=storage_path,
            size=size,
            sha256=sha256,
            content_type=content_type,
            created_at=utcnow(),
        )
        await self.store.put_artifact(run_id, artifact, f"artifact:{uuid.uuid4().hex}")
        return artifact
