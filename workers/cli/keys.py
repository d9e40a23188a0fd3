"""`loopline keys create|list|revoke`: API keys, straight in the trace store's database.

An operator's tool, like a database's own user commands: it needs the database URL
(LOOPLINE_DATABASE_URL), not a key, so the first admin key can be made with it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from loopline.models import DEFAULT_PROJECT, ApiKeyView, Scope
from loopline.settings import Settings
from loopline.store import KeyStore, UnknownKeyError
from loopline.store.database import Database
from loopline.store.keys import check_project


class KeysCommandError(Exception):
    """A bad option or an unknown key."""


def add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key; prints it once")
    create.add_argument("--name", required=True, help="who or what will use the key")
    create.add_argument("--project", default=DEFAULT_PROJECT)
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        choices=[scope.value for scope in Scope],
        help="repeat for several (default: task:read and task:write)",
    )
    listing = actions.add_parser("list", help="keys and their scopes, never their secrets")
    listing.add_argument("--project", help="only this project's keys")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")


async def run_keys_command(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        await db.create_schema()
        keys = KeyStore(db)
        if args.action == "create":
            await _create(keys, args)
        elif args.action == "list":
            _print_table(await keys.list(args.project))
        else:
            try:
                revoked = await keys.revoke(args.key_id)
            except UnknownKeyError as error:
                raise KeysCommandError(f"{error}; `loopline keys list` shows them") from error
            print(f"revoked {revoked.key_id} ({revoked.name}, project {revoked.project})")
        return 0
    finally:
        await db.close()


async def _create(keys: KeyStore, args: argparse.Namespace) -> None:
    try:
        project = check_project(args.project)
    except ValueError as error:
        raise KeysCommandError(str(error)) from error
    scopes = [Scope(scope) for scope in args.scopes or (Scope.task_read, Scope.task_write)]
    key = await keys.create(args.name, project, scopes)
    # The key alone on stdout, so that KEY=$(loopline keys create ...) works.
    print(key.key)
    print(
        f"key {key.key_id} of project {key.project}, scopes {', '.join(key.scopes)}. "
        "Keep it now: Loopline stores only its hash.",
        file=sys.stderr,
    )


def _print_table(keys: list[ApiKeyView]) -> None:
    rows = [("KEY ID", "NAME", "PROJECT", "SCOPES", "CREATED", "REVOKED")]
    for key in keys:
        rows.append(
            (
                key.key_id,
                key.name,
                key.project,
                ",".join(key.scopes),
                key.created_at.strftime("%Y-%m-%d %H:%M"),
                key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "-",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
