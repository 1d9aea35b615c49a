"""The approvals database: one SQLite file (WAL) holding requests and notifier delivery state.

Every state change is one conditional ``UPDATE`` (``... WHERE state = 'pending'``), so
two deciders (the gateway and the CLI, or two admins) can never both win; consuming
a deferred approval is an atomic ``UPDATE ... RETURNING``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from mcp_guard.approvals.errors import TooManyPendingError
from mcp_guard.approvals.models import (
    ApprovalContext,
    ApprovalRequest,
    ApprovalState,
    DeliveryState,
    DeliveryStatus,
    SignedDecision,
)
from mcp_guard.audit.models import format_time, parse_time
from mcp_guard.errors import GuardError
from mcp_guard.sqlite_schema import commit, initialise_schema

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    tool TEXT NOT NULL,
    call_digest TEXT NOT NULL,
    mode TEXT NOT NULL,
    context TEXT NOT NULL,
    decision TEXT,
    valid_until TEXT,
    closed_at TEXT,
    state_reason TEXT
);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, expires_at);
CREATE INDEX IF NOT EXISTS requests_call ON requests (principal_key, tool, call_digest, state);
CREATE TABLE IF NOT EXISTS deliveries (
    request_id TEXT NOT NULL REFERENCES requests (id),
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TEXT,
    PRIMARY KEY (request_id, channel)
);
"""
BeforeCommit = Callable[[ApprovalRequest], Awaitable[None]]
"""Runs inside a state change's transaction, before it commits; raising rolls it back."""

_COLUMNS = "id, state, created_at, expires_at, context, decision, valid_until, closed_at, state_reason"


class ApprovalStoreError(GuardError):
    """The approvals database cannot be opened, or is not an approvals database."""


class ApprovalStore:
    """Async access to the approvals database. One connection; statements serialised by a lock."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = anyio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(
        cls, path: Path, *, busy_timeout_ms: int = 2000, create: bool = True
    ) -> AsyncIterator[ApprovalStore]:
        """Open (with ``create``, creating if needed) the database at ``path``.

        Raises:
            ApprovalStoreError: the file is missing (``create=False``), unreadable,
                not SQLite, or from a newer version of mcp-guard.
        """
        if not create and not await anyio.Path(path).exists():
            raise ApprovalStoreError(f"approvals database {path} does not exist")
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ApprovalStoreError(f"cannot open approvals database {path}: {exc}") from None
        try:
            await _initialise(conn, path, busy_timeout_ms, create=create)
            yield cls(conn)
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    async def insert(
        self,
        request: ApprovalRequest,
        channels: Sequence[str],
        *,
        before_commit: BeforeCommit | None = None,
        max_pending: int | None = None,
    ) -> None:
        """Persist a new request and one pending delivery per channel, in one transaction.

        ``before_commit`` sees the request inside the transaction; when it raises, nothing is stored.

        Raises:
            TooManyPendingError: the principal already has ``max_pending`` unexpired pending
                requests (counted in the same transaction, so parallel inserts cannot pass it).
        """
        ctx = request.context
        row = (
            request.id,
            request.state.value,
            format_time(request.created_at),
            format_time(request.expires_at),
            ctx.principal.key,
            ctx.tool,
            ctx.call_digest,
            ctx.spec.mode,
            ctx.model_dump_json(),
        )
        now = format_time(request.created_at)
        async with self._tx() as conn:
            if max_pending is not None:
                pending = await _pending_of(conn, ctx.principal.key, request.created_at)
                if pending >= max_pending:
                    raise TooManyPendingError(ctx.principal.key, max_pending)
            await conn.execute(
                "INSERT INTO requests (id, state, created_at, expires_at, principal_key, tool, call_digest,"
                " mode, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            await conn.executemany(
                "INSERT INTO deliveries (request_id, channel, state, updated_at) VALUES (?, ?, 'pending', ?)",
                [(request.id, ch, now) for ch in channels],
            )
            if before_commit is not None:
                await before_commit(request)

    async def get(self, request_id: str) -> ApprovalRequest | None:
        rows = await self._query(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (request_id,))
        return _request(rows[0]) if rows else None

    async def list_requests(
        self, state: ApprovalState | None = None, *, limit: int = 500, offset: int = 0
    ) -> list[ApprovalRequest]:
        """Requests, newest first, optionally only those in ``state``; ``limit`` of them
        after skipping ``offset``."""
        where, params = ("", ()) if state is None else ("WHERE state = ? ", (state.value,))
        rows = await self._query(
            f"SELECT {_COLUMNS} FROM requests {where}ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_request(r) for r in rows]

    async def record_decision(
        self,
        request_id: str,
        decision: SignedDecision,
        valid_until: datetime | None,
        *,
        before_commit: BeforeCommit | None = None,
    ) -> ApprovalRequest | None:
        """Store a decision on a pending, unexpired request; ``None`` if it was not pending any more.

        ``before_commit`` sees the decided request inside the transaction: when it raises
        (the audit log cannot record the decision), nothing is stored and the error
        propagates, so a decision never takes effect unaudited.
        """
        state = ApprovalState.APPROVED if decision.approve else ApprovalState.REJECTED
        at = format_time(decision.decided_at)
        closed = None if decision.approve else at
        until = None if valid_until is None else format_time(valid_until)
        return await self._update_returning(
            "UPDATE requests SET state = ?, decision = ?, valid_until = ?, closed_at = ?"
            " WHERE id = ? AND state = 'pending' AND expires_at > ?",
            (state.value, decision.model_dump_json(), until, closed, request_id, at),
            before_commit=before_commit,
        )

    async def close_request(
        self,
        request_id: str,
        from_states: Iterable[ApprovalState],
        to_state: ApprovalState,
        at: datetime,
        reason: str | None,
        *,
        before_commit: BeforeCommit | None = None,
    ) -> ApprovalRequest | None:
        """Move a request from one of ``from_states`` to ``to_state``; ``None`` if it was in none of them.

        ``before_commit`` sees the closed request inside the transaction; when it raises,
        nothing changes and the error propagates.
        """
        states = [s.value for s in from_states]
        marks = ", ".join("?" * len(states))
        return await self._update_returning(
            "UPDATE requests SET state = ?, closed_at = ?, state_reason = ?"
            f" WHERE id = ? AND state IN ({marks})",
            (to_state.value, format_time(at), reason, request_id, *states),
            before_commit=before_commit,
        )

    async def consume(
        self,
        principal_key: str,
        tool: str,
        digest: str,
        now: datetime,
        *,
        before_commit: BeforeCommit | None = None,
    ) -> ApprovalRequest | None:
        """Atomically mark the oldest usable deferred approval of exactly this call ``used``.

        ``before_commit`` sees the used request inside the transaction; when it raises, the
        approval stays usable and the error propagates.
        """
        t = format_time(now)
        return await self._update_returning(
            "UPDATE requests SET state = 'used', closed_at = ? WHERE id = ("
            " SELECT id FROM requests WHERE principal_key = ? AND tool = ? AND call_digest = ?"
            " AND state = 'approved' AND mode = 'defer' AND valid_until > ? ORDER BY created_at LIMIT 1"
            ") AND state = 'approved'",
            (t, principal_key, tool, digest, t),
            before_commit=before_commit,
        )

    async def pending_deferral(
        self, principal_key: str, tool: str, digest: str, now: datetime
    ) -> ApprovalRequest | None:
        """The newest unexpired pending deferred request for exactly this call, if any."""
        rows = await self._query(
            f"SELECT {_COLUMNS} FROM requests WHERE principal_key = ? AND tool = ? AND call_digest = ?"
            " AND state = 'pending' AND mode = 'defer' AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
            (principal_key, tool, digest, format_time(now)),
        )
        return _request(rows[0]) if rows else None

    async def overdue(self, now: datetime) -> list[ApprovalRequest]:
        """Pending requests past their ttl, and deferred approvals past their validity."""
        t = format_time(now)
        rows = await self._query(
            f"SELECT {_COLUMNS} FROM requests WHERE (state = 'pending' AND expires_at <= ?)"
            " OR (state = 'approved' AND valid_until IS NOT NULL AND valid_until <= ?)",
            (t, t),
        )
        return [_request(r) for r in rows]

    async def pending(self, mode: str) -> list[ApprovalRequest]:
        rows = await self._query(
            f"SELECT {_COLUMNS} FROM requests WHERE state = 'pending' AND mode = ?", (mode,)
        )
        return [_request(r) for r in rows]

    async def deliveries(self, request_id: str) -> list[DeliveryStatus]:
        rows = await self._query(
            "SELECT request_id, channel, state, attempts, last_error, updated_at FROM deliveries"
            " WHERE request_id = ? ORDER BY channel",
            (request_id,),
        )
        return [_delivery(r) for r in rows]

    async def undelivered(self) -> list[DeliveryStatus]:
        """Deliveries still to do for requests that are still pending (resumed after a restart)."""
        rows = await self._query(
            "SELECT d.request_id, d.channel, d.state, d.attempts, d.last_error, d.updated_at"
            " FROM deliveries d JOIN requests r ON r.id = d.request_id"
            " WHERE d.state = 'pending' AND r.state = 'pending'"
        )
        return [_delivery(r) for r in rows]

    async def update_delivery(
        self,
        request_id: str,
        channel: str,
        *,
        state: DeliveryState,
        attempts: int,
        last_error: str | None,
        at: datetime,
    ) -> DeliveryStatus:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, last_error = ?, updated_at = ?"
                " WHERE request_id = ? AND channel = ?",
                (state, attempts, last_error, format_time(at), request_id, channel),
            )
        return DeliveryStatus(
            request_id=request_id,
            channel=channel,
            state=state,
            attempts=attempts,
            last_error=last_error,
            updated_at=at,
        )

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock, self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _update_returning(
        self, sql: str, params: Sequence[Any], *, before_commit: BeforeCommit | None = None
    ) -> ApprovalRequest | None:
        async with self._tx() as conn:
            async with conn.execute(sql + f" RETURNING {_COLUMNS}", params) as cur:
                rows = list(await cur.fetchall())
            changed = _request(rows[0]) if rows else None
            if changed is not None and before_commit is not None:
                await before_commit(changed)
        return changed

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._conn.execute("ROLLBACK")
                raise
            with anyio.CancelScope(shield=True):
                await commit(self._conn)


async def _pending_of(conn: aiosqlite.Connection, principal_key: str, now: datetime) -> int:
    """How many unexpired requests of ``principal_key`` wait for a decision."""
    async with conn.execute(
        "SELECT COUNT(*) FROM requests WHERE principal_key = ? AND state = 'pending' AND expires_at > ?",
        (principal_key, format_time(now)),
    ) as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def _initialise(conn: aiosqlite.Connection, path: Path, busy_timeout_ms: int, *, create: bool) -> None:
    try:
        await initialise_schema(
            conn,
            path,
            busy_timeout_ms,
            ddl=_DDL,
            version=SCHEMA_VERSION,
            what="approvals database",
            create=create,
        )
    except ValueError as exc:
        raise ApprovalStoreError(str(exc)) from None
    except sqlite3.Error as exc:
        raise ApprovalStoreError(f"cannot initialise approvals database {path}: {exc}") from None


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def _request(row: sqlite3.Row) -> ApprovalRequest:
    decision = row["decision"]
    return ApprovalRequest(
        id=row["id"],
        state=ApprovalState(row["state"]),
        created_at=parse_time(row["created_at"]),
        expires_at=parse_time(row["expires_at"]),
        context=ApprovalContext.model_validate_json(row["context"]),
        decision=None if decision is None else SignedDecision.model_validate_json(decision),
        valid_until=_time(row["valid_until"]),
        closed_at=_time(row["closed_at"]),
        state_reason=row["state_reason"],
    )


def _delivery(row: sqlite3.Row) -> DeliveryStatus:
    return DeliveryStatus(
        request_id=row["request_id"],
        channel=row["channel"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        updated_at=_time(row["updated_at"]),
    )
