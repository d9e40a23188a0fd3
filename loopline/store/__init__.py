"""The trace store: runs, events, environment state, tasksets, batches, agents and API keys
in one SQL database (SQLite by default, PostgreSQL in production).

Each store module owns its tables' reads and writes; `Database` runs every unit of work in
a store thread and migrates the schema when a process starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from loopline.redaction import HeldSecrets
from loopline.store.agents import AgentStore
from loopline.store.batches import BatchStore
from loopline.store.database import Database, SqliteSynchronous
from loopline.store.errors import (
    AgentNotFoundError,
    BatchNotFoundError,
    RunNotFoundError,
    TasksetNotFoundError,
    UnknownKeyError,
)
from loopline.store.keys import KeyStore
from loopline.store.tasksets import TasksetStore
from loopline.store.trace import TraceStore

__all__ = [
    "AgentNotFoundError",
    "AgentStore",
    "BatchNotFoundError",
    "BatchStore",
    "Database",
    "KeyStore",
    "RunNotFoundError",
    "Stores",
    "TasksetNotFoundError",
    "TasksetStore",
    "TraceStore",
    "UnknownKeyError",
    "open_stores",
]


@dataclass(frozen=True)
class Stores:
    """Every store of one database."""

    db: Database
    runs: TraceStore
    tasksets: TasksetStore
    batches: BatchStore
    agents: AgentStore
    keys: KeyStore

    @classmethod
    def of(cls, db: Database, held: HeldSecrets | None = None) -> Stores:
        return cls(
            db=db,
            runs=TraceStore(db, held),
            tasksets=TasksetStore(db),
            batches=BatchStore(db),
            agents=AgentStore(db),
            keys=KeyStore(db),
        )


@asynccontextmanager
async def open_stores(
    url: str, held: HeldSecrets | None = None, sqlite_synchronous: SqliteSynchronous = "full"
) -> AsyncIterator[Stores]:
    """The stores of the database at `url`, migrated to the newest schema; with `held`,
    the secrets of runs are scrubbed from what is written for them."""
    db = Database(url, sqlite_synchronous)
    try:
        await db.create_schema()
        yield Stores.of(db, held)
    finally:
        await db.close()
