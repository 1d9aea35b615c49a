"""Opening a versioned SQLite state file the same way everywhere: WAL, busy timeout,
fsync per commit, and a schema version check (``PRAGMA user_version``); committing
an explicit transaction the same way too."""

from __future__ import annotations

import sqlite3
from contextlib import closing, suppress
from functools import cache
from pathlib import Path

import aiosqlite


async def initialise_schema(
    conn: aiosqlite.Connection,
    path: Path,
    busy_timeout_ms: int,
    *,
    ddl: str,
    version: int,
    what: str,
    create: bool = True,
) -> None:
    """Prepare ``conn`` and create the tables of schema ``version`` (idempotent DDL).

    Without ``create`` (a command opening a file the gateway made) the file must
    already be one: a schema version and every table of ``ddl``. Anything else is
    refused before a byte of it is changed, so pointing ``--db`` at the wrong file
    cannot turn it into one of ours.

    Raises:
        sqlite3.Error: the file is not a usable SQLite database.
        ValueError: the file was written by a newer mcp-guard (its schema version is
            higher), or (without ``create``) it is not a ``what`` at all.
    """
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    found = int(row[0]) if row else 0
    if found > version:
        raise ValueError(f"{what} {path} has schema version {found}; this mcp-guard reads {version}")
    if not create:
        async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
            present = {str(r[0]) for r in await cur.fetchall()}
        missing = sorted(_tables(ddl) - present)
        if found == 0 or missing:
            lacking = f"tables {', '.join(missing)} missing" if missing else "no schema version"
            raise ValueError(f"{path} is not an mcp-guard {what} ({lacking})")
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.executescript(ddl)
    await conn.execute(f"PRAGMA user_version = {version}")


@cache
def _tables(ddl: str) -> frozenset[str]:
    """The tables ``ddl`` creates, read by SQLite itself from an in-memory database."""
    with closing(sqlite3.connect(":memory:")) as scratch:
        scratch.executescript(ddl)
        rows = scratch.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return frozenset(str(r[0]) for r in rows)


async def commit(conn: aiosqlite.Connection) -> None:
    """``COMMIT`` the open transaction; if that fails, roll it back and raise the failure.

    SQLite may leave the transaction open after a failed ``COMMIT`` (an I/O error, a full
    disk), and every later ``BEGIN`` would then fail with "cannot start a transaction
    within a transaction". Its advice: roll back, ignoring the error if it already did.

    Raises:
        sqlite3.Error: the commit failed.
    """
    try:
        await conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            await conn.execute("ROLLBACK")
        raise
