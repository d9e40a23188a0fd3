"""Notices of new events: on PostgreSQL, every transaction that writes a run's events sends
NOTIFY with the run id, so that an API process streaming the run hears of it at once
instead of at its next poll. SQLite has no such channel; there the API polls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

CHANNEL = "loopline_events"
RECONNECT_SECONDS = 1.0

logger = logging.getLogger(__name__)


def notify(conn: Connection, run_id: str) -> None:
    """Announce the run's new events when this transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :run_id)"), {"channel": CHANNEL, "run_id": run_id}
        )


def listens(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


async def listen(url: str, heard: Callable[[str], None]) -> None:
    """Call `heard(run_id)` for every notice, until cancelled; reconnects after a drop."""
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                async for notice in conn.notifies():
                    heard(notice.payload)
        except psycopg.Error as error:
            logger.warning("event notices lost (%s); listening again", error)
            await asyncio.sleep(RECONNECT_SECONDS)
