"""Who may do what. Every service call takes the caller and asks this module first, so that
no route can forget a check.

* An API key belongs to one project and has scopes: `task:read` reads, `task:write`
  changes, `admin` does both and manages its project's keys. Another project's run, batch
  or taskset is answered exactly as one that does not exist.
* A connection token grants one incarnation of one run of one project, for as long as it
  lasts, and at most what the key that minted it could do there: its events (`run:events`)
  and, from a key that may write, its commands (`run:commands`).
* API keys come in headers only; a URL's `?token=` takes connection tokens, on the routes
  that stream (browsers' EventSource cannot set headers).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from api.services.errors import Forbidden, NotFound, Unauthenticated
from api.services.signing import Signer
from loopline.models import ConnectionToken, RunView, Scope
from loopline.store import BatchStore, KeyStore, TraceStore
from loopline.store.batches import BatchRecord
from loopline.store.keys import is_api_key


class Grant(StrEnum):
    """What a connection token may be used for."""

    events = "run:events"
    commands = "run:commands"


class Need(StrEnum):
    """What a call does with a run: what a key's scope or a token's grant must allow."""

    read = "read"
    write = "write"
    events = "events"
    commands = "commands"


KEY_SCOPE = {
    Need.read: Scope.task_read,
    Need.write: Scope.task_write,
    Need.events: Scope.task_read,
    Need.commands: Scope.task_write,
}
TOKEN_GRANT = {Need.events: Grant.events, Need.commands: Grant.commands}


@dataclass(frozen=True)
class RunGrant:
    run_id: str
    incarnation: str
    grants: frozenset[str]


@dataclass(frozen=True)
class Caller:
    """Who is asking: a key's project and scopes, or a connection token's one run."""

    project: str
    scopes: frozenset[Scope] = frozenset()
    key_id: str | None = None
    token: RunGrant | None = None

    def may(self, scope: Scope) -> bool:
        return self.token is None and (Scope.admin in self.scopes or scope in self.scopes)


@dataclass
class Access:
    keys: KeyStore
    runs: TraceStore
    batches: BatchStore
    signer: Signer

    async def authenticate(self, credential: str | None, *, in_url: bool = False) -> Caller:
        """The caller a credential stands for; `in_url` when it came as `?token=`."""
        if not credential:
            raise Unauthenticated(
                "send an API key: 'Authorization: Bearer ll_...' or 'X-API-KEY: ll_...' "
                "(create one with `loopline keys create`)"
            )
        if is_api_key(credential):
            if in_url:
                raise Unauthenticated(
                    "API keys go in the Authorization (or X-API-KEY) header, never in a URL; "
                    "?token= takes a run's connection token"
                )
            key = await self.keys.authenticate(credential)
            if key is None:
                raise Unauthenticated("the API key is not valid, or it was revoked")
            return Caller(project=key.project, scopes=frozenset(key.scopes), key_id=key.key_id)
        claims = self.signer.claims(credential)
        grant = RunGrant(claims.run_id, claims.incarnation, claims.grants)
        return Caller(project=claims.project, token=grant)

    def project(self, caller: Caller, scope: Scope) -> str:
        """The caller's project, for calls that list or create in it."""
        if caller.token is not None:
            raise Forbidden("a connection token grants one run's events and commands only")
        if not caller.may(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")
        return caller.project

    async def run(self, caller: Caller, run_id: str, need: Need) -> RunView:
        """The run, if the caller may do `need` with it."""
        if caller.token is not None:
            return await self._token_run(caller.token, caller.project, run_id, need)
        self.project(caller, KEY_SCOPE[need])
        try:
            view = await self.runs.get_run(run_id)
        except LookupError:
            view = None
        if view is None or view.project != caller.project:
            raise NotFound(f"no run {run_id!r}")
        return view

    async def batch(self, caller: Caller, batch_id: str, scope: Scope) -> BatchRecord:
        project = self.project(caller, scope)
        try:
            record = await self.batches.get(batch_id)
        except LookupError:
            record = None
        if record is None or record.project != project:
            raise NotFound(f"no batch {batch_id!r}")
        return record

    async def connection_token(
        self, caller: Caller, run_id: str, *, events_only: bool = False
    ) -> ConnectionToken:
        """A token for the run that grants what the caller may do there, no more; with
        `events_only` (a token put in a URL), its events alone."""
        view = await self.run(caller, run_id, Need.events)
        grants = [Grant.events.value]
        if caller.may(Scope.task_write) and not events_only:
            grants.append(Grant.commands.value)
        token = self.signer.token(run_id, view.project, view.incarnation, grants)
        claims = self.signer.claims(token)
        return ConnectionToken(
            token=token, run_id=run_id, expires_at=claims.expires_at, grants=grants
        )

    async def _token_run(self, token: RunGrant, project: str, run_id: str, need: Need) -> RunView:
        grant = TOKEN_GRANT.get(need)
        if grant is None or grant.value not in token.grants:
            raise Forbidden(
                "this connection token does not grant that: it grants "
                f"{', '.join(sorted(token.grants))} of run {token.run_id!r} only"
            )
        if token.run_id != run_id:
            raise Forbidden("the connection token is for another run")
        try:
            view = await self.runs.get_run(run_id)
        except LookupError:
            view = None
        if view is None or view.project != project or view.incarnation != token.incarnation:
            raise Unauthenticated(
                f"the connection token's run {run_id!r} no longer exists; ask for a new token"
            )
        return view
