"""Signed credentials the API hands out: connection tokens (JWT, HS256) and expiring
artifact download URLs (HMAC-SHA256). The keys derive from the deployment's secret key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from api.services.errors import Forbidden, Unauthenticated
from loopline.secrets import SecretBox

TOKEN_LIFETIME = timedelta(hours=24)
ISSUER = "loopline"


@dataclass(frozen=True)
class TokenClaims:
    """What a connection token grants: one incarnation of one run of one project."""

    run_id: str
    project: str
    incarnation: str
    grants: frozenset[str]
    expires_at: datetime


@dataclass(frozen=True)
class Signer:
    token_key: bytes
    url_key: bytes

    @classmethod
    def from_box(cls, box: SecretBox) -> Signer:
        return cls(token_key=box.derive("connection-token"), url_key=box.derive("artifact-url"))

    def token(self, run_id: str, project: str, incarnation: str, grants: list[str]) -> str:
        now = datetime.now(UTC)
        claims = {
            "iss": ISSUER,
            "sub": run_id,
            "prj": project,
            "inc": incarnation,
            "grants": grants,
            "iat": int(now.timestamp()),
            "exp": int((now + TOKEN_LIFETIME).timestamp()),
        }
        return jwt.encode(claims, self.token_key, algorithm="HS256")

    def claims(self, token: str) -> TokenClaims:
        """What a valid token grants; Unauthenticated for one that is not (or no longer)."""
        try:
            claims = jwt.decode(
                token,
                self.token_key,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iss", "prj", "inc", "grants"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the connection token has expired; ask for a new one") from error
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"the connection token is not valid: {error}") from error
        return TokenClaims(
            run_id=str(claims["sub"]),
            project=str(claims["prj"]),
            incarnation=str(claims["inc"]),
            grants=frozenset(str(grant) for grant in claims["grants"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )

    def url_signature(self, run_id: str, name: str, expires: int) -> str:
        message = f"{run_id}\n{name}\n{expires}".encode()
        return hmac.new(self.url_key, message, hashlib.sha256).hexdigest()

    def check_url(self, run_id: str, name: str, expires: int, signature: str) -> None:
        expected = self.url_signature(run_id, name, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Forbidden("the download link is not valid")
        if datetime.now(UTC).timestamp() > expires:
            expired = datetime.fromtimestamp(expires, UTC).isoformat()
            raise Forbidden(f"the download link expired at {expired}; ask for a new one (presign)")
