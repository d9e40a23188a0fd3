"""API keys: created with their secret shown once, stored as a SHA-256 of it, revocable.

A key reads `ll_<key id>_<secret>`. The id finds the row and the secret is compared in
constant time with the stored hash. The secret is 192 random bits, so a fast hash is as
safe as a slow one: there is nothing to guess a dictionary word from.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from loopline.models import PROJECT_PATTERN, ApiKeyView, NewApiKey, Scope
from loopline.store.database import Database, aware, utcnow
from loopline.store.errors import UnknownKeyError
from loopline.store.tables import api_keys

KEY_PATTERN = re.compile(r"^ll_([0-9a-f]{12})_([0-9a-f]{48})$")


def is_api_key(value: str) -> bool:
    return value.startswith("ll_")


def check_project(project: str) -> str:
    if not re.match(PROJECT_PATTERN, project):
        raise ValueError(
            f"project {project!r} must be 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return project


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, name: str, project: str, scopes: list[Scope]) -> NewApiKey:
        key_id, secret = secrets.token_hex(6), secrets.token_hex(24)
        row = {
            "key_id": key_id,
            "secret_hash": _hash(secret),
            "name": name,
            "project": check_project(project),
            "scopes": sorted(set(scopes)),
            "created_at": utcnow(),
        }
        await self._db.write(lambda conn: conn.execute(api_keys.insert().values(**row)))
        return NewApiKey(**row, key=f"ll_{key_id}_{secret}")

    async def authenticate(self, key: str) -> ApiKeyView | None:
        """The live key this is, or None (malformed, unknown, wrong secret or revoked)."""
        match = KEY_PATTERN.match(key)
        if match is None:
            return None
        key_id, secret = match.groups()
        row = await self._db.read(_key_row, key_id)
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["secret_hash"], _hash(secret)):
            return None
        return _view(row)

    async def list(self, project: str | None = None) -> list[ApiKeyView]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if project is not None:
            query = query.where(api_keys.c.project == project)
        return await self._db.read(
            lambda conn: [_view(row) for row in conn.execute(query).mappings()]
        )

    async def revoke(self, key_id: str, project: str | None = None) -> ApiKeyView:
        """Revoke a key (again is fine); `project` limits which keys may be named."""

        def work(conn: Connection) -> ApiKeyView:
            row = _key_row(conn, key_id)
            if row is None or project not in (None, row["project"]):
                raise UnknownKeyError(f"no API key {key_id!r}")
            if row["revoked_at"] is None:
                conn.execute(
                    update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=utcnow())
                )
                row = _key_row(conn, key_id)
            assert row is not None
            return _view(row)

        return await self._db.write(work)


def _key_row(conn: Connection, key_id: str) -> RowMapping | None:
    return conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).mappings().first()


def _view(row: RowMapping) -> ApiKeyView:
    return ApiKeyView(
        key_id=row["key_id"],
        name=row["name"],
        project=row["project"],
        scopes=[Scope(scope) for scope in row["scopes"]],
        created_at=aware(row["created_at"]),
        revoked_at=aware(row["revoked_at"]),
    )
