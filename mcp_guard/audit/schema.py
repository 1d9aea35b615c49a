"""The SQLite layout of the audit log, and read-only access shared by verify, export and report."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_guard.audit.models import AuditEntry, AuditError, Checkpoint

SCHEMA_VERSION = "1"

DDL = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_time ON entries (time);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    time TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

ENTRY_COLUMNS = "seq, id, time, kind, record, prev_hash, hash"
CHECKPOINT_COLUMNS = "seq, hash, time, first_seq, key_id, signature"


class AuditFileError(AuditError):
    """An audit database cannot be opened or is not an audit log."""


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the audit database at ``path``.

    Raises:
        AuditFileError: the file does not exist, cannot be opened, or is not an audit log.
    """
    p = Path(path)
    if not p.is_file():
        raise AuditFileError(f"{p}: no such audit database")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise AuditFileError(f"{p}: cannot open as SQLite: {exc}") from None
    if not {"entries", "checkpoints"} <= tables:
        conn.close()
        raise AuditFileError(f"{p}: not an mcp-guard audit log (tables entries/checkpoints missing)")
    return conn


@dataclass(frozen=True)
class MalformedCheckpoint:
    """A checkpoints row that cannot be a checkpoint: mcp-guard never writes one."""

    row_id: int
    seq: int | None
    """The row's ``seq`` when it is an integer (to place the problem), else None."""
    why: str


def read_checkpoints(conn: sqlite3.Connection) -> tuple[list[Checkpoint], list[MalformedCheckpoint]]:
    """All checkpoints in the order they were written, and the rows that are not checkpoints.

    A row is read as it is stored, without conversions: an integer field must hold an
    integer and a text field UTF-8 text. Anything else was put there by hand (a file
    need not keep mcp-guard's column types), so it is reported rather than coerced
    into something that might verify, or left to crash the reader.
    """
    previous = conn.text_factory
    conn.text_factory = bytes  # undecodable text must not abort the whole read
    try:
        rows = conn.execute(f"SELECT id, {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY id").fetchall()
    finally:
        conn.text_factory = previous
    good: list[Checkpoint] = []
    bad: list[MalformedCheckpoint] = []
    for row in rows:
        checkpoint = _checkpoint_from_row(row[1:])
        if isinstance(checkpoint, Checkpoint):
            good.append(checkpoint)
        else:
            seq = row[1] if type(row[1]) is int else None
            bad.append(MalformedCheckpoint(row_id=row[0], seq=seq, why=checkpoint))
    return good, bad


def _checkpoint_from_row(row: tuple[Any, ...]) -> Checkpoint | str:
    """The checkpoint in a row of ``CHECKPOINT_COLUMNS`` (text as bytes), or what is wrong with it."""
    fields: dict[str, Any] = {}
    for name, value in zip(CHECKPOINT_COLUMNS.split(", "), row, strict=True):
        if name in {"seq", "first_seq"}:
            if type(value) is not int:
                return f"{name} is not an integer"
            fields[name] = value
        elif not isinstance(value, bytes):
            return f"{name} is not text"
        else:
            try:
                fields[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                return f"{name} is not UTF-8 text"
    return Checkpoint(**fields)


@dataclass(frozen=True)
class EntryFilter:
    """Which entries to select. Times are RFC 3339 text compared with stored times."""

    since: str | None = None
    until: str | None = None
    user: str | None = None
    agent: str | None = None
    tool: str | None = None
    decision: str | None = None
    kind: str | None = None
    after_seq: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL ``WHERE`` clause (possibly empty) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value, op in (
            ("time", self.since, ">="),
            ("time", self.until, "<"),
            ("kind", self.kind, "="),
            ("seq", self.after_seq, ">"),
            ("json_extract(record, '$.principal.user')", self.user, "="),
            ("json_extract(record, '$.principal.agent')", self.agent, "="),
            ("json_extract(record, '$.tool')", self.tool, "="),
            ("json_extract(record, '$.decision')", self.decision, "="),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def iter_entries(conn: sqlite3.Connection, flt: EntryFilter | None = None) -> Iterator[AuditEntry]:
    """Entries matching ``flt`` in sequence order, streamed.

    Raises:
        AuditFileError: a stored record is not valid JSON, or the query fails.
    """
    where, params = (flt or EntryFilter()).where()
    try:
        cursor = conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries{where} ORDER BY seq", params)
        for row in cursor:
            yield row_to_entry(row)
    except sqlite3.Error as exc:
        raise AuditFileError(f"cannot read entries: {exc}") from None


def row_to_entry(row: tuple[Any, ...]) -> AuditEntry:
    """An :class:`AuditEntry` from a row of ``ENTRY_COLUMNS``.

    Raises:
        AuditFileError: the record is not a JSON object.
    """
    try:
        record = json.loads(row[4])
    except ValueError:
        raise AuditFileError(f"seq {row[0]}: record is not valid JSON") from None
    if not isinstance(record, dict):
        raise AuditFileError(f"seq {row[0]}: record is not a JSON object")
    return AuditEntry(
        seq=row[0], id=row[1], time=row[2], kind=row[3], record=record, prev_hash=row[5], hash=row[6]
    )
