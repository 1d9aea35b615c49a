"""The embedded default state: in memory, with budgets written behind to SQLite.

Budget counters must survive a restart; buckets, slots and breakers need not (a
restart refills buckets, frees slots and closes breakers, which is what a fresh
process should do). The authoritative counters stay in memory so a check never waits
for disk; changed counters are written to SQLite (aiosqlite, WAL) every
``flush_interval`` seconds by a task owned by :func:`open_embedded_state`, and once
more on exit, shielded from cancellation.

Durability trade-off: a crash (not a clean shutdown) loses at most the increments of
the last ``flush_interval`` — those calls go uncounted, so a budget may be exceeded by
what was spent in that interval. ``flush_interval=0`` writes through after every
change instead (see docs/controls.md for measured costs).

When a write fails, the stored counters must never end up below what was forwarded:
write-behind keeps counting in memory and retries (the file lags by what a crash would
lose anyway); write-through refuses the call whose charge it could not write
(:class:`ChargeNotRecorded`) and keeps its counter as it was; a give-back that cannot
be written is kept in memory and written with the next write that succeeds, the file
over-counting until then.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from time import time

import aiosqlite
import anyio

from mcp_guard.controls.state import ChargeNotRecorded, MemoryState, Usage

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_usage (
    key TEXT NOT NULL,
    period REAL NOT NULL,
    period_end REAL NOT NULL,
    calls INTEGER NOT NULL,
    cost REAL NOT NULL,
    PRIMARY KEY (key, period)
)
"""


class EmbeddedState(MemoryState):
    """:class:`MemoryState` whose budget counters are persisted to a SQLite file.

    Build it with :func:`open_embedded_state`, which loads, runs the flusher and closes.
    """

    def __init__(
        self, db: aiosqlite.Connection, flush_interval: float, wall: Callable[[], float] = time
    ) -> None:
        super().__init__()
        self._db = db
        self.flush_interval = flush_interval
        self._wall = wall
        self._dirty: set[tuple[str, float]] = set()
        self._lock = anyio.Lock()

    async def load(self, wall_ts: float) -> int:
        """Read the counters of periods not yet ended at ``wall_ts``; returns how many."""
        await self._db.execute("DELETE FROM budget_usage WHERE period_end <= ?", (wall_ts,))
        await self._db.commit()
        async with self._db.execute("SELECT key, period, period_end, calls, cost FROM budget_usage") as cur:
            rows = list(await cur.fetchall())
        for key, period, end, calls, cost in rows:
            self.counters[key, period] = Usage(calls=calls, cost=cost, end=end)
        return len(rows)

    async def flush(self) -> int:
        """Write every changed counter (an upsert of absolute values); returns how many."""
        async with self._lock:
            dirty, self._dirty = self._dirty, set()
            rows = [
                (key, period, u.end, u.calls, u.cost)
                for key, period in dirty
                if (u := self.counters.get((key, period))) is not None
            ]
            if not rows:
                return 0
            try:
                await self._db.executemany(
                    "INSERT INTO budget_usage (key, period, period_end, calls, cost) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (key, period) DO UPDATE SET calls = excluded.calls, cost = excluded.cost",
                    rows,
                )
                await self._db.commit()
            except BaseException:
                self._dirty |= dirty  # try again next time
                with anyio.CancelScope(shield=True):
                    await self._db.rollback()  # an open write transaction would lock others out
                raise
            return len(rows)

    async def counter_add(
        self,
        key: str,
        period: float,
        *,
        end: float,
        calls: int,
        cost: float,
        max_calls: int | None,
        max_cost: float | None,
    ) -> tuple[bool, Usage]:
        added, usage = await super().counter_add(
            key, period, end=end, calls=calls, cost=cost, max_calls=max_calls, max_cost=max_cost
        )
        if added and self.flush_interval == 0:
            try:
                await self.flush()
            except BaseException as exc:  # not written (or cancelled): the call is not counted
                await super().counter_sub(key, period, calls, cost)
                if isinstance(exc, sqlite3.Error):
                    raise ChargeNotRecorded(f"writing the budget counters to SQLite failed: {exc}") from exc
                raise
        return added, usage

    async def counter_sub(self, key: str, period: float, calls: int, cost: float) -> None:
        await super().counter_sub(key, period, calls, cost)
        if self.flush_interval == 0:
            try:
                await self.flush()
            except sqlite3.Error as exc:
                logger.error(
                    "controls: writing a budget give-back to SQLite failed (%s); the file counts "
                    "too much until the next write succeeds",
                    exc,
                )

    def _changed(self, key: str, period: float) -> None:
        self._dirty.add((key, period))

    async def _run_flusher(self) -> None:
        """Flush every ``flush_interval``; a failed flush is logged and retried next time.

        The counters in memory stay authoritative, so enforcement is unaffected; letting the
        error escape would tear down the gateway (this task shares its task group) over a
        locked or full disk, and lose the very counters it failed to write.
        """
        while True:
            await anyio.sleep(self.flush_interval)
            try:
                await self.flush()
            except sqlite3.Error as exc:
                logger.error(
                    "controls: writing %d budget counter(s) to SQLite failed (%s); they stay counted "
                    "in memory and are written at the next flush",
                    len(self._dirty),
                    exc,
                )
            self.prune_counters(self._wall())


@asynccontextmanager
async def open_embedded_state(
    path: str | Path, *, flush_interval: float = 1.0, wall: Callable[[], float] = time
) -> AsyncIterator[EmbeddedState]:
    """Open (creating if needed) the SQLite file, load live counters, flush until exit.

    ``wall`` (UTC epoch seconds; injected by tests) decides which stored periods are over.
    On exit the last changes are written even when the block is cancelled.

    Raises:
        sqlite3.Error: the file cannot be opened or written.
    """
    db = await aiosqlite.connect(str(path))
    try:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(_SCHEMA)
        await db.commit()
        state = EmbeddedState(db, flush_interval, wall)
        await state.load(wall())
        async with anyio.create_task_group() as tg:
            if flush_interval > 0:
                tg.start_soon(state._run_flusher)
            try:
                yield state
            finally:
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await state.flush()
    finally:
        with anyio.CancelScope(shield=True):
            await db.close()
