"""Where artifact bytes live: a local folder by default, S3-compatible storage by settings.

The trace store keeps the manifest (name, size, digest); a blob store keeps the bytes under
a storage path. S3 hands out its own presigned download URLs; for the local folder the API
signs its own (see api/access.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Protocol

from loopline.settings import Settings


class BlobStoreError(RuntimeError):
    pass


class BlobStore(Protocol):
    async def put(self, path: str, source: IO[bytes], content_type: str) -> None: ...

    def local_file(self, path: str) -> Path | None:
        """The file holding the blob when it is on this machine, else None."""
        ...

    def presigned_url(self, path: str, expires_in: int, filename: str) -> str | None:
        """A download URL signed by the store itself, or None if it cannot make one."""
        ...

    async def delete(self, paths: list[str]) -> None:
        """Remove these blobs; ones already gone are no error."""
        ...


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    async def put(self, path: str, source: IO[bytes], content_type: str) -> None:
        await asyncio.to_thread(self._write, path, source)

    def _write(self, path: str, source: IO[bytes]) -> None:
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: a reader never sees half a file.
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as draft:
            try:
                shutil.copyfileobj(source, draft)
            except BaseException:
                os.unlink(draft.name)
                raise
        try:
            os.replace(draft.name, target)
        except BaseException:
            os.unlink(draft.name)
            raise

    def local_file(self, path: str) -> Path | None:
        target = self._resolve(path)
        return target if target.is_file() else None

    def presigned_url(self, path: str, expires_in: int, filename: str) -> str | None:
        return None

    async def delete(self, paths: list[str]) -> None:
        def work() -> None:
            for path in paths:
                self._resolve(path).unlink(missing_ok=True)

        await asyncio.to_thread(work)

    def _resolve(self, path: str) -> Path:
        target = (self._root / path).resolve()
        if not target.is_relative_to(self._root):
            raise BlobStoreError(f"storage path {path!r} leaves the blob folder")
        return target


class S3Blobs:
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    async def put(self, path: str, source: IO[bytes], content_type: str) -> None:
        await asyncio.to_thread(
            self._client.upload_fileobj,
            source,
            self._bucket,
            self._prefix + path,
            ExtraArgs={"ContentType": content_type},
        )

    def local_file(self, path: str) -> Path | None:
        return None

    def presigned_url(self, path: str, expires_in: int, filename: str) -> str | None:
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": self._prefix + path,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in,
        )
        return url

    async def delete(self, paths: list[str]) -> None:
        # S3 deletes at most 1000 keys per request.
        for start in range(0, len(paths), 1000):
            keys = [{"Key": self._prefix + path} for path in paths[start : start + 1000]]
            await asyncio.to_thread(
                self._client.delete_objects, Bucket=self._bucket, Delete={"Objects": keys}
            )


def open_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "local":
        return LocalBlobs(Path(settings.blob_dir))
    if not settings.s3_bucket:
        raise BlobStoreError("LOOPLINE_BLOB_STORE=s3 needs LOOPLINE_S3_BUCKET")
    try:
        import boto3  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as error:
        raise BlobStoreError(
            "LOOPLINE_BLOB_STORE=s3 needs boto3: pip install 'loopline[s3]'"
        ) from error
    client = boto3.client(
        "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region
    )
    return S3Blobs(client, settings.s3_bucket, settings.s3_prefix)
