"""Who may do what: connection tokens scoped to one run, and expiring signed artifact URLs.

Until API keys exist every caller has full access; a request that carries a connection
token is limited to the one run the token names, and to its events and commands.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status

from loopline.models import ConnectionToken
from loopline.secrets import SecretBox

TOKEN_LIFETIME = timedelta(hours=24)
TOKEN_GRANTS = ["run:events", "run:commands"]
ISSUER = "loopline"


@dataclass(frozen=True)
class Signer:
    """Signs connection tokens (JWT, HS256) and artifact URLs (HMAC-SHA256)."""

    token_key: bytes
    url_key: bytes

    @classmethod
    def from_box(cls, box: SecretBox) -> Signer:
        return cls(token_key=box.derive("connection-token"), url_key=box.derive("artifact-url"))

    def connection_token(self, run_id: str) -> ConnectionToken:
        now = datetime.now(UTC)
        expires_at = now + TOKEN_LIFETIME
        claims = {
            "iss": ISSUER,
            "sub": run_id,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "grants": TOKEN_GRANTS,
        }
        token = jwt.encode(claims, self.token_key, algorithm="HS256")
        return ConnectionToken(
            token=token, run_id=run_id, expires_at=expires_at, grants=TOKEN_GRANTS
        )

    def run_of_token(self, token: str) -> str:
        """The run a valid token grants; raises 401 for a token that is not (or no longer)."""
        try:
            claims = jwt.decode(
                token,
                self.token_key,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise _unauthorized("the connection token has expired; ask for a new one") from error
        except jwt.InvalidTokenError as error:
            raise _unauthorized(f"the connection token is not valid: {error}") from error
        return str(claims["sub"])

    def url_signature(self, run_id: str, name: str, expires: int) -> str:
        message = f"{run_id}\n{name}\n{expires}".encode()
        return hmac.new(self.url_key, message, hashlib.sha256).hexdigest()

    def check_url(self, run_id: str, name: str, expires: int, signature: str) -> None:
        expected = self.url_signature(run_id, name, expires)
        if not hmac.compare_digest(expected, signature):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the download link is not valid")
        if datetime.now(UTC).timestamp() > expires:
            expired = datetime.fromtimestamp(expires, UTC).isoformat()
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the download link expired at {expired}; ask for a new one (presign)",
            )


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


def get_signer(request: Request) -> Signer:
    signer: Signer = request.app.state.signer
    return signer


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    # Browsers' EventSource cannot set headers; the stream takes the token as a parameter.
    return request.query_params.get("token")


def full_access(request: Request) -> None:
    """For everything but one run's events and commands: no connection token accepted."""
    if _bearer(request) is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a connection token grants one run's events and commands only",
        )


def run_access(run_id: str, request: Request) -> None:
    """For a run's events and commands: full access, or a connection token for this run."""
    token = _bearer(request)
    if token is None:
        return
    if get_signer(request).run_of_token(token) != run_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the connection token is for another run")


FullAccess = Depends(full_access)
RunAccess = Depends(run_access)
SignerDep = Annotated[Signer, Depends(get_signer)]
