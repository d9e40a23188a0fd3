"""Connection tokens and signed URLs refuse what they must: other keys, expired ones,
tokens without the claims that bind them to a project and an incarnation."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.fernet import Fernet

from api.services.errors import Forbidden, Unauthenticated
from api.services.signing import ISSUER, Signer
from loopline.secrets import SecretBox


def signer() -> Signer:
    return Signer.from_box(SecretBox(Fernet.generate_key()))


def test_a_token_names_its_run_project_and_incarnation_until_it_expires() -> None:
    issuer = signer()
    token = issuer.token("run-a", "team-a", "inc-1", ["run:events"])
    claims = issuer.claims(token)
    assert (claims.run_id, claims.project, claims.incarnation) == ("run-a", "team-a", "inc-1")
    assert claims.grants == {"run:events"}
    assert 23.9 * 3600 < claims.expires_at.timestamp() - time.time() <= 24 * 3600

    now = int(time.time())
    stale = jwt.encode(
        {
            "iss": ISSUER,
            "sub": "run-a",
            "prj": "team-a",
            "inc": "inc-1",
            "grants": ["run:events"],
            "iat": now - 90_000,
            "exp": now - 3600,
        },
        issuer.token_key,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated, match="expired"):
        issuer.claims(stale)


def test_a_token_without_project_or_incarnation_is_refused() -> None:
    """Tokens of the earlier kind named only their run: they would cross projects."""
    issuer = signer()
    now = int(time.time())
    bare = jwt.encode(
        {"iss": ISSUER, "sub": "run-a", "iat": now, "exp": now + 60, "grants": ["run:events"]},
        issuer.token_key,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated, match="not valid"):
        issuer.claims(bare)


def test_a_token_from_another_deployment_is_refused() -> None:
    foreign = signer().token("run-a", "team-a", "inc-1", ["run:events"])
    with pytest.raises(Unauthenticated):
        signer().claims(foreign)


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
        with pytest.raises(Forbidden):
            issuer.check_url(run_id, name, until, signature)
