"""The SQL database behind the trace store: engines, units of work, and the threads that run them.

SQLite by default, other databases by SQLAlchemy URL. Each unit of work runs in a store
thread: one thread hop per call instead of one per statement (as aiosqlite does) took an
event append on SQLite from ~5.5 ms to ~2 ms here, and a read from ~2 ms to ~0.5 ms.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url

T = TypeVar("T")
# SQLite's PRAGMA synchronous in WAL mode: "full" syncs the log at every commit, "normal"
# only at checkpoints, so a commit survives the process dying but not the machine's power.
SqliteSynchronous = Literal["full", "normal"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Database:
    def __init__(self, url: str, sqlite_synchronous: SqliteSynchronous = "full") -> None:
        sqlite = make_url(url).get_backend_name() == "sqlite"
        if sqlite:
            _ensure_sqlite_folder(url)
        self.reader = create_engine(url)
        # SQLite writers take the write lock up front (BEGIN IMMEDIATE): a deferred
        # transaction that reads and then writes fails at once when another writer is in.
        self.writer = create_engine(url) if sqlite else self.reader
        if sqlite:
            _configure_sqlite(self.reader, sqlite_synchronous, immediate=False)
            _configure_sqlite(self.writer, sqlite_synchronous, immediate=True)
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="trace-store")

    async def call(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(work, *args)
        )

    async def read(self, work: Callable[..., T], *args: Any) -> T:
        """One unit of reading: `work(conn, *args)` on a reader connection, in a store thread."""
        return await self.call(self._read, work, args)

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """One transaction: `work(conn, *args)` committed together, or not at all."""
        return await self.call(self._write, work, args)

    def _read(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self.reader.connect() as conn:
            return work(conn, *args)

    def _write(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self.writer.begin() as conn:
            return work(conn, *args)

    async def create_schema(self) -> None:
        """Migrate the schema to the newest revision (see `migrate`)."""
        await self.call(migrate, self.writer)

    async def close(self) -> None:
        self._threads.shutdown(wait=True)
        self.reader.dispose()
        self.writer.dispose()


# The revision of the schema that `create_all` made before Loopline had migrations.
FIRST_REVISION = "0001"
MIGRATION_LOCK = 7280514


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema revision, in one transaction.

    API and workers may start together: on PostgreSQL an advisory lock, on SQLite the
    write lock (BEGIN IMMEDIATE) lets one of them migrate while the others wait and then
    find nothing to do. A database made before migrations existed is adopted at 0001.
    """
    # Alembic is needed once per process start; the API's import time is spared it.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "loopline.store:migrations")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = conn
        tables = set(inspect(conn).get_table_names())
        if "runs" in tables and "alembic_version" not in tables:
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")


def _ensure_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine, synchronous: SqliteSynchronous, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver: readers run each SELECT on its own snapshot (no BEGIN
        # and ROLLBACK round trips), writers issue BEGIN IMMEDIATE from the "begin" event.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching a new database to WAL takes a lock that another
        # process starting at the same moment (API and worker migrating) may hold.
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.close()

    if immediate:

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
