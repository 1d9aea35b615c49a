"""Export and tail: entries as JSON Lines or CSV, filtered, streamed."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from mcp_guard.audit.canonical import canonical_json
from mcp_guard.audit.models import AuditEntry
from mcp_guard.audit.schema import ENTRY_COLUMNS, EntryFilter, iter_entries, open_readonly, row_to_entry

ExportFormat = Literal["jsonl", "csv"]

CSV_COLUMNS = (
    "seq",
    "id",
    "time",
    "kind",
    "user",
    "agent",
    "tool",
    "decision",
    "risk",
    "reason",
    "rules",
    "args_digest",
    "prev_hash",
    "hash",
    "record",
)


def entry_json(entry: AuditEntry) -> str:
    """One entry as a canonical JSON line (without the newline)."""
    return canonical_json(entry.model_dump())


def export_entries(path: str | Path, out: TextIO, fmt: ExportFormat, flt: EntryFilter | None = None) -> int:
    """Write the entries matching ``flt`` to ``out`` in ``fmt``; return how many were written.

    CSV has one column per common record field (see ``CSV_COLUMNS``) plus the whole
    record as canonical JSON in ``record``.

    Raises:
        AuditFileError: the database is missing, not an audit log, or unreadable.
        OSError: ``out`` cannot be written.
    """
    conn = open_readonly(path)
    count = 0
    try:
        if fmt == "jsonl":
            for entry in iter_entries(conn, flt):
                out.write(entry_json(entry) + "\n")
                count += 1
        else:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for entry in iter_entries(conn, flt):
                writer.writerow(csv_row(entry))
                count += 1
    finally:
        conn.close()
    return count


def csv_row(entry: AuditEntry) -> list[str]:
    """The CSV cells of ``entry`` in ``CSV_COLUMNS`` order."""
    rec = entry.record
    principal = rec.get("principal")
    principal = principal if isinstance(principal, dict) else {}
    rules = rec.get("rules")
    return [
        str(entry.seq),
        entry.id,
        entry.time,
        entry.kind,
        _cell(principal.get("user")),
        _cell(principal.get("agent")),
        _cell(rec.get("tool")),
        _cell(rec.get("decision")),
        _cell(rec.get("risk")),
        _cell(rec.get("reason")),
        ";".join(str(r) for r in rules) if isinstance(rules, list) else _cell(rules),
        _cell(rec.get("args_digest")),
        entry.prev_hash,
        entry.hash,
        canonical_json(rec),
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return canonical_json(value)


def tail_entries(path: str | Path, n: int) -> list[AuditEntry]:
    """The last ``n`` entries, oldest first.

    Raises:
        AuditFileError: the database is missing, not an audit log, or unreadable.
    """
    conn = open_readonly(path)
    try:
        rows = conn.execute(
            f"SELECT {ENTRY_COLUMNS} FROM entries ORDER BY seq DESC LIMIT ?", (max(n, 0),)
        ).fetchall()
    finally:
        conn.close()
    return [row_to_entry(r) for r in reversed(rows)]


def follow_entries(
    path: str | Path,
    after_seq: int,
    *,
    poll_s: float = 0.5,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[AuditEntry]:
    """Entries after ``after_seq`` as they are appended, polling every ``poll_s`` until ``stop()``.

    Raises:
        AuditFileError: the database is missing, not an audit log, or unreadable.
    """
    last = after_seq
    while not stop():
        conn = open_readonly(path)
        try:
            batch = list(iter_entries(conn, EntryFilter(after_seq=last)))
        finally:
            conn.close()
        for entry in batch:
            last = entry.seq
            yield entry
        if not batch:
            sleep(poll_s)
