"""The pin database's tables and the conversions between rows and models.

``pins`` holds one approved definition per (upstream, tool); ``pending`` at most one
held definition per (upstream, tool); ``outbox`` the audit records of operator
decisions made by another process (the CLI), until a gateway claims (deletes) them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from mcp_guard.audit.models import format_time, parse_time
from mcp_guard.findings import Finding
from mcp_guard.pinning.errors import PinStoreError
from mcp_guard.pinning.models import PendingChange, PendingState, Pin, QuarantineReason
from mcp_guard.sqlite_schema import initialise_schema

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS pins (
    upstream TEXT NOT NULL,
    name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    definition TEXT NOT NULL,
    pinned_at TEXT NOT NULL,
    pinned_by TEXT NOT NULL,
    forced INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (upstream, name)
);
CREATE TABLE IF NOT EXISTS pending (
    upstream TEXT NOT NULL,
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    definition TEXT NOT NULL,
    findings TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    PRIMARY KEY (upstream, name)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    upstream TEXT NOT NULL,
    record TEXT NOT NULL
);
"""

PIN_COLUMNS = "upstream, name, fingerprint, definition, pinned_at, pinned_by, forced"
PENDING_COLUMNS = (
    "upstream, name, reason, state, fingerprint, definition, findings, first_seen, decided_at, decided_by"
)


async def initialise(conn: aiosqlite.Connection, path: Path, busy_timeout_ms: int, *, create: bool) -> None:
    """Set WAL and the busy timeout, check the version, create the tables (without
    ``create``: only in a file that already is a pin database).

    Raises:
        PinStoreError: not a SQLite database, not a pin database (without ``create``),
            or written by a newer mcp-guard.
    """
    try:
        await initialise_schema(
            conn, path, busy_timeout_ms, ddl=DDL, version=SCHEMA_VERSION, what="pin database", create=create
        )
    except ValueError as exc:
        raise PinStoreError(str(exc)) from None
    except sqlite3.Error as exc:
        raise PinStoreError(f"cannot initialise pin database {path}: {exc}") from None


def to_json(value: Any) -> str:
    """Stored JSON: sorted keys, ASCII-only (so even a lone surrogate survives the round trip)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def pin_row(pin: Pin) -> tuple[Any, ...]:
    return (
        pin.upstream,
        pin.name,
        pin.fingerprint,
        to_json(pin.definition),
        format_time(pin.pinned_at),
        pin.pinned_by,
        int(pin.forced),
    )


def pin_from_row(row: sqlite3.Row) -> Pin:
    return Pin(
        upstream=row["upstream"],
        name=row["name"],
        fingerprint=row["fingerprint"],
        definition=json.loads(row["definition"]),
        pinned_at=parse_time(row["pinned_at"]),
        pinned_by=row["pinned_by"],
        forced=bool(row["forced"]),
    )


def pending_row(p: PendingChange) -> tuple[Any, ...]:
    return (
        p.upstream,
        p.name,
        p.reason.value,
        p.state.value,
        p.fingerprint,
        to_json(p.definition),
        to_json([f.model_dump(mode="json") for f in p.findings]),
        format_time(p.first_seen),
        None if p.decided_at is None else format_time(p.decided_at),
        p.decided_by,
    )


def pending_from_row(row: sqlite3.Row) -> PendingChange:
    return PendingChange(
        upstream=row["upstream"],
        name=row["name"],
        reason=QuarantineReason(row["reason"]),
        state=PendingState(row["state"]),
        fingerprint=row["fingerprint"],
        definition=json.loads(row["definition"]),
        findings=tuple(Finding.model_validate(f) for f in json.loads(row["findings"])),
        first_seen=parse_time(row["first_seen"]),
        decided_at=None if row["decided_at"] is None else parse_time(row["decided_at"]),
        decided_by=row["decided_by"],
    )


def signatures(pins: Iterable[Pin], pending: Iterable[PendingChange]) -> dict[str, str]:
    """Per upstream, a digest of its pin and pending state: it changes exactly when a review could."""
    parts: dict[str, list[str]] = {}
    for pin in pins:
        parts.setdefault(pin.upstream, []).append(f"pin {pin.name} {pin.fingerprint} {int(pin.forced)}")
    for p in pending:
        parts.setdefault(p.upstream, []).append(f"pending {p.name} {p.fingerprint} {p.state} {p.reason}")
    return {
        upstream: hashlib.sha256("\n".join(sorted(lines)).encode("utf-8", "surrogatepass")).hexdigest()
        for upstream, lines in parts.items()
    }
