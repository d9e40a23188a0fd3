"""Who may do what: API keys with scopes and a project, connection tokens scoped to one
run, and expiring signed artifact URLs.

Every route names the scope it needs. A key sees only its own project: another project's
run, batch or taskset is answered exactly as one that does not exist (404). A connection
token reaches one run's events and commands, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status

from loopline.catalog import BatchNotFoundError, Catalog
from loopline.keys import KeyStore, is_api_key
from loopline.models import ConnectionToken, Scope
from loopline.secrets import SecretBox
from loopline.store import RunNotFoundError, TraceStore

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
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the download link is not valid")
        if datetime.now(UTC).timestamp() > expires:
            expired = datetime.fromtimestamp(expires, UTC).isoformat()
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the download link expired at {expired}; ask for a new one (presign)",
            )


@dataclass(frozen=True)
class Caller:
    """Who is asking: a key's project and scopes, or a connection token's one run."""

    project: str | None
    scopes: frozenset[Scope]
    key_id: str | None = None
    token_run: str | None = None

    def may(self, scope: Scope) -> bool:
        return Scope.admin in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class Gate:
    """What the access checks look up: keys, and which project owns a run or batch."""

    keys: KeyStore
    store: TraceStore
    catalog: Catalog
    signer: Signer

    async def caller(self, request: Request, *, token_allowed: bool) -> Caller:
        credential = _bearer(request)
        if credential is None:
            raise _unauthorized(
                "send an API key: 'Authorization: Bearer ll_...' or 'X-API-KEY: ll_...' "
                "(create one with `loopline keys create`)"
            )
        if not is_api_key(credential):
            if not token_allowed:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    "a connection token grants one run's events and commands only",
                )
            run_id = self.signer.run_of_token(credential)
            return Caller(project=None, scopes=frozenset(TOKEN_SCOPES), token_run=run_id)
        key = await self.keys.authenticate(credential)
        if key is None:
            raise _unauthorized("the API key is not valid, or it was revoked")
        return Caller(project=key.project, scopes=frozenset(key.scopes), key_id=key.key_id)


# A connection token lets its holder watch the run and talk to it.
TOKEN_SCOPES = (Scope.task_read, Scope.task_write)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


def _forbidden(scope: Scope) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, f"this API key lacks the {scope.value!r} scope")


def get_gate(request: Request) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


def get_signer(request: Request) -> Signer:
    return get_gate(request).signer


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    # The agents API (and clients written for it) send the key as X-API-KEY.
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        return api_key
    # Browsers' EventSource cannot set headers; the stream takes the credential as a parameter.
    return request.query_params.get("token")


def _project_scoped(scope: Scope) -> Callable[[Request], Awaitable[str]]:
    async def check(request: Request) -> str:
        caller = await get_gate(request).caller(request, token_allowed=False)
        if not caller.may(scope) or caller.project is None:
            raise _forbidden(scope)
        return caller.project

    return check


def _run_scoped(
    scope: Scope, *, token_allowed: bool
) -> Callable[[str, Request], Awaitable[Caller]]:
    async def check(run_id: str, request: Request) -> Caller:
        gate = get_gate(request)
        caller = await gate.caller(request, token_allowed=token_allowed)
        if caller.token_run is not None:
            if caller.token_run != run_id:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, "the connection token is for another run"
                )
            return caller
        if not caller.may(scope):
            raise _forbidden(scope)
        if await gate.store.run_project(run_id) != caller.project:
            raise RunNotFoundError(f"no run {run_id!r}")
        return caller

    return check


def _batch_scoped(scope: Scope) -> Callable[[str, Request], Awaitable[Caller]]:
    async def check(batch_id: str, request: Request) -> Caller:
        gate = get_gate(request)
        caller = await gate.caller(request, token_allowed=False)
        if not caller.may(scope):
            raise _forbidden(scope)
        if await gate.catalog.batch_project(batch_id) != caller.project:
            raise BatchNotFoundError(f"no batch {batch_id!r}")
        return caller

    return check


ReadAccess = Depends(_project_scoped(Scope.task_read))
# The project of a key with the scope, for routes that list or create.
ReadProject = Annotated[str, ReadAccess]
WriteProject = Annotated[str, Depends(_project_scoped(Scope.task_write))]
AdminProject = Annotated[str, Depends(_project_scoped(Scope.admin))]
# Checks of routes under one run or batch of the caller's project.
RunRead = Depends(_run_scoped(Scope.task_read, token_allowed=False))
RunWrite = Depends(_run_scoped(Scope.task_write, token_allowed=False))
# A run's events and commands also take that run's connection token.
RunOrTokenRead = Depends(_run_scoped(Scope.task_read, token_allowed=True))
RunOrTokenWrite = Depends(_run_scoped(Scope.task_write, token_allowed=True))
BatchRead = Depends(_batch_scoped(Scope.task_read))
BatchWrite = Depends(_batch_scoped(Scope.task_write))
SignerDep = Annotated[Signer, Depends(get_signer)]
