"""Connection tokens and signed URLs refuse what they must: other keys, expired ones."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.fernet import Fernet
from fastapi import HTTPException

from api.access import ISSUER, Signer
from loopline.secrets import SecretBox


def signer() -> Signer:
    return Signer.from_box(SecretBox(Fernet.generate_key()))


def test_a_token_names_its_run_until_it_expires() -> None:
    issuer = signer()
    issued = issuer.connection_token("run-a")
    assert issuer.run_of_token(issued.token) == "run-a"
    assert 23.9 * 3600 < issued.expires_at.timestamp() - time.time() <= 24 * 3600

    now = int(time.time())
    stale = jwt.encode(
        {"iss": ISSUER, "sub": "run-a", "iat": now - 90_000, "exp": now - 3600},
        issuer.token_key,
        algorithm="HS256",
    )
    with pytest.raises(HTTPException) as expired:
        issuer.run_of_token(stale)
    assert expired.value.status_code == 401
    assert "expired" in expired.value.detail


def test_a_token_from_another_deployment_is_refused() -> None:
    foreign = signer().connection_token("run-a").token
    with pytest.raises(HTTPException) as refused:
        signer().run_of_token(foreign)
    assert refused.value.status_code == 401


def test_url_signatures_bind_run_name_and_expiry() -> None:
    issuer = signer()
    expires = int(time.time()) + 60
    signature = issuer.url_signature("run-a", "report.md", expires)
    issuer.check_url("run-a", "report.md", expires, signature)
    for run_id, name, until in (
        ("run-b", "report.md", expires),
        ("run-a", "other.md", expires),
        ("run-a", "report.md", expires + 1),
    ):
        with pytest.raises(HTTPException) as refused:
            issuer.check_url(run_id, name, until, signature)
        assert refused.value.status_code == 403
