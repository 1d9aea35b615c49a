"""Opening a versioned SQLite state file the same way everywhere: WAL, busy timeout,
fsync per commit, and a schema version check (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite


async def initialise_schema(
    conn: aiosqlite.Connection, path: Path, busy_timeout_ms: int, *, ddl: str, version: int, what: str
) -> None:
    """Prepare ``conn`` and create the tables of schema ``version`` (idempotent DDL).

    Raises:
        sqlite3.Error: the file is not a usable SQLite database.
        ValueError: the file was written by a newer mcp-guard (its schema version is higher).
    """
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = FULL")
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    found = int(row[0]) if row else 0
    if found > version:
        raise ValueError(f"{what} {path} has schema version {found}; this mcp-guard reads {version}")
    await conn.executescript(ddl)
    await conn.execute(f"PRAGMA user_version = {version}")
