"""Baselines by agent, kept in memory and written behind to SQLite.

Scoring reads only the in-memory baselines, synchronously; :meth:`BaselineStore.observe`
updates them and marks them dirty; :meth:`BaselineStore.flush` writes the dirty ones
(one JSON row per agent, an upsert) through aiosqlite, off the event loop's thread.
:func:`open_baseline_store` loads, flushes every ``flush_interval_s`` and once more on
exit, shielded from cancellation.

Durability trade-off: a crash loses what was learned since the last flush -- at most a
few seconds of observations, which only delays learning a little.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from mcp_guard.principal import Principal, escape_key_part
from mcp_guard.risk.baseline import AgentBaseline, BaselineConfig
from mcp_guard.sessions.records import epoch
from mcp_guard.sessions.shape import argument_shape

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS risk_baselines (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated REAL NOT NULL
)
"""


class BaselineStore:
    """Per-agent :class:`AgentBaseline` objects; persisted to ``path`` when one is given.

    Without ``path`` the store is memory-only and :meth:`load` / :meth:`flush` do nothing.
    Not thread-safe: use it from one event loop.
    """

    def __init__(self, config: BaselineConfig | None = None, path: str | Path | None = None) -> None:
        self.config = config or BaselineConfig()
        self.path = Path(path) if path is not None else None
        self._baselines: dict[str, AgentBaseline] = {}
        self._dirty: set[str] = set()
        self._db: aiosqlite.Connection | None = None
        self._lock = anyio.Lock()
        self.skipped: list[str] = []
        """Keys of stored rows that could not be read at :meth:`load` (left untouched on disk)."""

    def key_for(self, principal: Principal) -> str:
        """The baseline key of ``principal`` (see :attr:`BaselineConfig.key`)."""
        if self.config.key == "agent" and principal.agent:
            return f"{escape_key_part(principal.tenant or '')}|agent:{escape_key_part(principal.agent)}"
        return principal.key

    def get(self, principal: Principal) -> AgentBaseline | None:
        """The baseline of ``principal``, ``None`` before its first observed call."""
        return self._baselines.get(self.key_for(principal))

    def observe(
        self,
        principal: Principal,
        tool: str,
        now: datetime,
        *,
        arguments: Mapping[str, Any] | None = None,
        shape: str | None = None,
    ) -> None:
        """Learn one *forwarded* call (never call it for blocked or held calls).

        Pass the argument ``shape`` when already computed, else the ``arguments``.
        """
        key = self.key_for(principal)
        baseline = self._baselines.get(key)
        if baseline is None:
            baseline = self._baselines[key] = AgentBaseline()
        if shape is None:
            shape = argument_shape(arguments or {})
        baseline.observe(tool, shape, epoch(now), self.config)
        self._dirty.add(key)

    @property
    def pending(self) -> int:
        """Baselines changed since the last flush."""
        return len(self._dirty)

    def __len__(self) -> int:
        return len(self._baselines)

    async def load(self) -> int:
        """Open the SQLite file (creating it) and read every stored baseline; returns how many.

        In-memory baselines with the same key are replaced. Rows that cannot be decoded are
        skipped and listed in :attr:`skipped`.

        Raises:
            sqlite3.Error: the file cannot be opened or read.
        """
        db = await self._connect()
        if db is None:
            return 0
        async with db.execute("SELECT key, data FROM risk_baselines") as cur:
            rows = list(await cur.fetchall())
        loaded = 0
        for key, data in rows:
            try:
                self._baselines[str(key)] = AgentBaseline.from_json(json.loads(data))
            except (ValueError, KeyError, TypeError):
                self.skipped.append(str(key))
                continue
            self._dirty.discard(str(key))
            loaded += 1
        return loaded

    async def flush(self) -> int:
        """Write every changed baseline; returns how many. Failed writes are retried next time.

        Raises:
            sqlite3.Error: the file cannot be written.
        """
        db = await self._connect()
        if db is None:
            self._dirty.clear()
            return 0
        async with self._lock:
            dirty, self._dirty = self._dirty, set()
            rows = [
                (key, json.dumps(b.to_json(), separators=(",", ":")), b.last_ts)
                for key in dirty
                if (b := self._baselines.get(key)) is not None
            ]
            if not rows:
                return 0
            try:
                await db.executemany(
                    "INSERT INTO risk_baselines (key, data, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated = excluded.updated",
                    rows,
                )
                await db.commit()
            except BaseException:
                self._dirty |= dirty  # try again next time
                with anyio.CancelScope(shield=True), suppress(sqlite3.Error, ValueError):
                    await db.rollback()  # left open, its stale view of the file would fail every retry
                raise  # the flush's own error, not the rollback's
            return len(rows)

    async def aclose(self) -> None:
        """Flush and close the file (shielded from cancellation)."""
        with anyio.CancelScope(shield=True):
            try:
                if self._db is not None:
                    await self.flush()
            finally:
                if self._db is not None:
                    db, self._db = self._db, None
                    await db.close()

    async def _connect(self) -> aiosqlite.Connection | None:
        if self.path is None:
            return None
        if self._db is None:
            db = await aiosqlite.connect(str(self.path))
            try:
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute("PRAGMA synchronous=NORMAL")
                await db.execute(_SCHEMA)
                await db.commit()
            except BaseException:
                await db.close()
                raise
            self._db = db
        return self._db

    async def _run_flusher(self, interval: float) -> None:
        """Flush every ``interval``; a failed flush is logged and retried next time.

        Scoring reads the baselines in memory, so it is unaffected; letting the error
        escape would tear down the gateway (this task shares its services' lifetime) over
        a locked or full disk, and stop persisting baselines for good.
        """
        while True:
            await anyio.sleep(interval)
            try:
                await self.flush()
            except sqlite3.Error as exc:
                logger.error(
                    "risk baselines: writing %d baseline(s) to %s failed (%s); they stay learned in "
                    "memory and are written at the next flush",
                    self.pending,
                    self.path,
                    exc,
                )


@asynccontextmanager
async def open_baseline_store(
    path: str | Path | None, config: BaselineConfig | None = None
) -> AsyncIterator[BaselineStore]:
    """A loaded :class:`BaselineStore` that flushes every ``config.flush_interval_s`` until exit.

    Raises:
        sqlite3.Error: the file cannot be opened, read or written.
    """
    store = BaselineStore(config, path)
    try:
        await store.load()
        async with anyio.create_task_group() as tg:
            if store.path is not None and store.config.flush_interval_s > 0:
                tg.start_soon(store._run_flusher, store.config.flush_interval_s)
            try:
                yield store
            finally:
                tg.cancel_scope.cancel()
    finally:
        await store.aclose()
