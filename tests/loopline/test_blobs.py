"""Artifact bytes in S3-compatible storage: real boto3 against moto's S3 server over HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loopline.blobs import BlobStoreError, LocalBlobs, open_blob_store
from loopline.settings import Settings
from tests.harness import free_port

moto_server = pytest.importorskip(
    "moto.server", reason="moto[server] is a dev extra; without it the S3 path is not exercised"
)
boto3 = pytest.importorskip("boto3", reason="boto3 comes with the s3 extra")


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def test_s3_keeps_bytes_and_presigns_expiring_downloads(s3_endpoint: str) -> None:
    settings = Settings(
        blob_store="s3", s3_bucket="artifacts", s3_endpoint_url=s3_endpoint, s3_region="us-east-1"
    )
    blobs = open_blob_store(settings)
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="artifacts")
    await blobs.put("runs/r1/artifacts/out.txt", io.BytesIO(b"hello"), "text/plain")
    assert blobs.local_file("runs/r1/artifacts/out.txt") is None
    url = blobs.presigned_url("runs/r1/artifacts/out.txt", 60, "out.txt")
    assert url is not None and "Signature" in url and "Expires=" in url
    async with httpx.AsyncClient() as http:
        download = await http.get(url)
    assert download.status_code == 200
    assert download.content == b"hello"


def test_s3_without_a_bucket_says_what_is_missing() -> None:
    with pytest.raises(BlobStoreError, match="LOOPLINE_S3_BUCKET"):
        open_blob_store(Settings(blob_store="s3"))


async def test_local_blobs_never_leave_their_folder(tmp_path: Path) -> None:
    blobs = LocalBlobs(tmp_path)
    with pytest.raises(BlobStoreError, match="leaves the blob folder"):
        await blobs.put("../outside.txt", io.BytesIO(b"x"), "text/plain")
