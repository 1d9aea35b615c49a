"""``PinStore``: the pin database and the review the gateway runs on every listing change.

One SQLite file (WAL) shared by the running gateway and the ``mcp-guard tools``
commands. Every review and every operator decision is one ``BEGIN IMMEDIATE``
transaction that reads the rows it decides on, so a CLI ``accept`` and a gateway
review can interleave but never lose each other's writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import anyio
from mcp import types

from mcp_guard.audit.models import format_time
from mcp_guard.inspection import scan_tool_definition
from mcp_guard.pinning import schema
from mcp_guard.pinning.config import PinningConfig
from mcp_guard.pinning.diff import render_diff
from mcp_guard.pinning.errors import NothingPendingError, PinStoreError, PoisonedToolError, StalePendingError
from mcp_guard.pinning.evaluate import ScanCache, Scanner
from mcp_guard.pinning.models import (
    PendingChange,
    PendingState,
    Pin,
    PinEvent,
    PinRefresh,
    PinReview,
    ToolRecord,
    finding_records,
)
from mcp_guard.pinning.review import plan_review, sight
from mcp_guard.sqlite_schema import commit

Clock = Callable[[], datetime]
Deliver = Callable[[dict[str, Any]], Awaitable[object]]
"""Hands one operator-decision audit record on (the gateway appends it to the audit log)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PinStore:
    """Pins, pending changes and reviews over one SQLite connection (statements serialised by a lock)."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        config: PinningConfig,
        clock: Clock,
        scan: Scanner = scan_tool_definition,
    ) -> None:
        self._conn = conn
        self._config = config
        self._clock = clock
        self._scans = ScanCache(scan)
        self._lock = anyio.Lock()
        self._signatures: dict[str, str] = {}
        self._data_version: int | None = None

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config: PinningConfig,
        *,
        clock: Clock = _utc_now,
        create: bool = True,
        scan: Scanner = scan_tool_definition,
    ) -> AsyncIterator[PinStore]:
        """Open (with ``create``, creating the file and its folder if needed) ``config.path``.

        ``scan`` finds poisoning in a definition (tests replace it).

        Raises:
            PinStoreError: the file is missing (``create=False``), unreadable, not SQLite,
                or from a newer mcp-guard.
        """
        path = config.path
        if not create and not await anyio.Path(path).exists():
            raise PinStoreError(f"pin database {path} does not exist")
        try:
            if create:
                await anyio.Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise PinStoreError(f"cannot open pin database {path}: {exc}") from None
        try:
            await schema.initialise(conn, path, config.busy_timeout_ms, create=create)
            store = cls(conn, config, clock, scan)
            await store._load_signatures()
            yield store
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    # -- the gateway's side -----------------------------------------------------------

    async def review(
        self, upstream: str, tools: Sequence[types.Tool], deliver: Deliver | None = None
    ) -> PinReview:
        """Decide which of ``upstream``'s listed ``tools`` may be exposed; pin and hold as needed.

        ``deliver`` (the gateway: append to the audit log) is called with each event's
        record before the review is committed. If it raises, nothing is pinned or held
        and the error propagates: the next review plans the same events again, so no pin
        exists without its audit record (a record delivered before the failing one is
        delivered again: a duplicate rather than a gap).

        ``tools`` are the ORIGINAL upstream definitions (before namespacing). Idempotent:
        reviewing the same listing again changes nothing and returns no events. Tools
        missing from the listing keep their pins (one that comes back unchanged is allowed).
        Fingerprinting and the poisoning scan run in a worker thread, outside the
        transaction; a definition already scanned (same fingerprint) is not scanned again.

        Raises:
            PinStoreError: the database cannot be read or written (fail closed: expose nothing).
            ValueError: a definition holds a lone surrogate.
            Exception: whatever ``deliver`` raised.
        """
        sightings = await anyio.to_thread.run_sync(
            sight, tools, self._config, self._scans, anyio.from_thread.check_cancelled
        )
        async with self._tx() as conn:
            pins = {p.name: p for p in await self._pins(conn, upstream)}
            pending = {p.name: p for p in await self._pending(conn, upstream)}
            plan = plan_review(
                upstream, sightings, pins=pins, pending=pending, config=self._config, now=self._clock()
            )
            for pin in plan.new_pins:
                await conn.execute(_UPSERT_PIN, schema.pin_row(pin))
            for name in plan.cleared:
                await conn.execute(_DELETE_PENDING, (upstream, name))
            for change in plan.new_pending:
                await conn.execute(_UPSERT_PENDING, schema.pending_row(change))
            records = [e.record() for e in plan.events]
            if deliver is not None:
                for record in records:
                    await deliver(record)
            await self._remember(conn, upstream)
        return PinReview(tuple(plan.allowed), tuple(plan.held), records)

    async def refresh(self, deliver: Deliver | None = None) -> PinRefresh:
        """Re-read the database after another process (the CLI) changed it.

        Cheap when nothing changed (one ``PRAGMA data_version``). Returns the upstreams
        whose pins or pending changes differ from what this store last saw (review their
        listings again) and claims the operator-decision audit records waiting in the
        outbox (each is handed to exactly one caller, even with several gateways).

        ``deliver`` (the gateway: append to the audit log) is called with each claimed
        record before the claim is committed. If it raises, nothing is claimed and this
        store forgets that it looked: the records and the changed upstreams come back on
        the next refresh, so an operator's decision is never lost from the audit trail nor
        acted on before it is recorded (a record delivered before the failing one is
        delivered again: a duplicate rather than a gap).

        Raises:
            PinStoreError: the database cannot be read.
            Exception: whatever ``deliver`` raised.
        """
        async with self._lock:
            version = await self._version()
            if version == self._data_version:
                return PinRefresh(frozenset(), [])
        before = dict(self._signatures)
        try:
            async with self._tx() as conn:
                await self._remember(conn, None)
                changed = {
                    u
                    for u in before.keys() | self._signatures.keys()
                    if before.get(u) != self._signatures.get(u)
                }
                async with conn.execute("DELETE FROM outbox RETURNING seq, record") as cur:
                    rows = sorted(await cur.fetchall(), key=lambda r: int(r["seq"]))
                records = [json.loads(r["record"]) for r in rows]
                if deliver is not None:
                    for record in records:
                        await deliver(record)
        except BaseException:
            self._signatures = before
            raise
        self._data_version = version
        return PinRefresh(frozenset(changed), records)

    # -- the operator's side ----------------------------------------------------------

    async def accept(
        self, upstream: str, name: str, *, by: str, force: bool = False, expected: str | None = None
    ) -> Pin:
        """Pin the pending definition of ``upstream``'s tool ``name``; its audit record goes to the outbox.

        ``expected``: a prefix of the fingerprint the operator reviewed; refuses if the
        pending definition has changed since.

        Raises:
            NothingPendingError: nothing is pending for that tool.
            PoisonedToolError: the definition has poisoning findings and ``force`` is false.
            StalePendingError: the pending fingerprint does not start with ``expected``.
            PinStoreError: the database cannot be written.
        """
        async with self._tx() as conn:
            waiting = await self._pending_one(conn, upstream, name)
            if waiting is None:
                raise NothingPendingError(upstream, name)
            if expected is not None and not waiting.fingerprint.startswith(expected.lower()):
                raise StalePendingError(upstream, name, expected, waiting.fingerprint)
            if waiting.findings and not force:
                raise PoisonedToolError(upstream, name, len(waiting.findings))
            old = {p.name: p for p in await self._pins(conn, upstream)}.get(name)
            pin = Pin(
                upstream,
                name,
                waiting.fingerprint,
                waiting.definition,
                self._clock(),
                by,
                bool(waiting.findings),
            )
            await conn.execute(_UPSERT_PIN, schema.pin_row(pin))
            await conn.execute(_DELETE_PENDING, (upstream, name))
            event = PinEvent(
                event="accepted",
                upstream=upstream,
                tool=name,
                fingerprint=pin.fingerprint,
                previous_fingerprint=old.fingerprint if old else None,
                reason=waiting.reason,
                by=by,
                forced=pin.forced,
                findings=finding_records(waiting.findings),
                definition=dict(waiting.definition),
            )
            await self._outbox(conn, upstream, event)
        return pin

    async def reject(self, upstream: str, name: str, *, by: str) -> PendingChange:
        """Mark the pending definition rejected: it stays hidden, and stops being asked about.

        Raises:
            NothingPendingError: nothing is pending for that tool.
            PinStoreError: the database cannot be written.
        """
        async with self._tx() as conn:
            waiting = await self._pending_one(conn, upstream, name)
            if waiting is None:
                raise NothingPendingError(upstream, name)
            now = self._clock()
            await conn.execute(
                "UPDATE pending SET state = ?, decided_at = ?, decided_by = ?"
                " WHERE upstream = ? AND name = ?",
                (PendingState.REJECTED.value, format_time(now), by, upstream, name),
            )
            event = PinEvent(
                event="rejected",
                upstream=upstream,
                tool=name,
                fingerprint=waiting.fingerprint,
                reason=waiting.reason,
                by=by,
                findings=finding_records(waiting.findings),
            )
            await self._outbox(conn, upstream, event)
        return replace(waiting, state=PendingState.REJECTED, decided_at=now, decided_by=by)

    async def records(self, upstream: str | None = None) -> list[ToolRecord]:
        """Every known tool (of ``upstream``, or all), ordered by upstream then name.

        Raises:
            PinStoreError: the database cannot be read.
        """
        async with self._tx() as conn:
            pins = {(p.upstream, p.name): p for p in await self._pins(conn, upstream)}
            pending = {(p.upstream, p.name): p for p in await self._pending(conn, upstream)}
        keys = sorted(pins.keys() | pending.keys())
        return [ToolRecord(u, n, pins.get((u, n)), pending.get((u, n))) for u, n in keys]

    async def record(self, upstream: str, name: str) -> ToolRecord | None:
        """What the store knows about one tool, or ``None``.

        Raises:
            PinStoreError: the database cannot be read.
        """
        found = [r for r in await self.records(upstream) if r.name == name]
        return found[0] if found else None

    async def diff(self, upstream: str, name: str) -> str:
        """A readable unified diff of the pinned versus the pending definition (see :func:`render_diff`).

        Raises:
            NothingPendingError: nothing is pending for that tool.
            PinStoreError: the database cannot be read.
        """
        rec = await self.record(upstream, name)
        if rec is None or rec.pending is None:
            raise NothingPendingError(upstream, name)
        return render_diff(rec.pin, rec.pending)

    # -- internals --------------------------------------------------------------------

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise PinStoreError(f"pin database {self._config.path}: {exc}") from None
            try:
                yield self._conn
            except sqlite3.Error as exc:
                with anyio.CancelScope(shield=True):
                    await self._conn.execute("ROLLBACK")
                raise PinStoreError(f"pin database {self._config.path}: {exc}") from None
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._conn.execute("ROLLBACK")
                raise
            with anyio.CancelScope(shield=True):
                try:
                    await commit(self._conn)
                except sqlite3.Error as exc:
                    raise PinStoreError(f"pin database {self._config.path}: {exc}") from None

    async def _version(self) -> int:
        try:
            async with self._conn.execute("PRAGMA data_version") as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise PinStoreError(f"pin database {self._config.path}: {exc}") from None
        return int(row[0]) if row else 0

    async def _load_signatures(self) -> None:
        async with self._tx() as conn:
            await self._remember(conn, None)
        async with self._lock:
            self._data_version = await self._version()

    async def _remember(self, conn: aiosqlite.Connection, upstream: str | None) -> None:
        fresh = schema.signatures(await self._pins(conn, upstream), await self._pending(conn, upstream))
        if upstream is None:
            self._signatures = fresh
        elif upstream in fresh:
            self._signatures[upstream] = fresh[upstream]
        else:
            self._signatures.pop(upstream, None)

    async def _pins(self, conn: aiosqlite.Connection, upstream: str | None) -> list[Pin]:
        where, params = ("WHERE upstream = ?", (upstream,)) if upstream is not None else ("", ())
        async with conn.execute(f"SELECT {schema.PIN_COLUMNS} FROM pins {where}", params) as cur:
            return [schema.pin_from_row(r) for r in await cur.fetchall()]

    async def _pending(self, conn: aiosqlite.Connection, upstream: str | None) -> list[PendingChange]:
        where, params = ("WHERE upstream = ?", (upstream,)) if upstream is not None else ("", ())
        async with conn.execute(f"SELECT {schema.PENDING_COLUMNS} FROM pending {where}", params) as cur:
            return [schema.pending_from_row(r) for r in await cur.fetchall()]

    async def _pending_one(
        self, conn: aiosqlite.Connection, upstream: str, name: str
    ) -> PendingChange | None:
        found = [p for p in await self._pending(conn, upstream) if p.name == name]
        return found[0] if found else None

    async def _outbox(self, conn: aiosqlite.Connection, upstream: str, event: PinEvent) -> None:
        await conn.execute(
            "INSERT INTO outbox (upstream, record) VALUES (?, ?)", (upstream, schema.to_json(event.record()))
        )


_UPSERT_PIN = f"INSERT OR REPLACE INTO pins ({schema.PIN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_UPSERT_PENDING = (
    f"INSERT OR REPLACE INTO pending ({schema.PENDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DELETE_PENDING = "DELETE FROM pending WHERE upstream = ? AND name = ?"
