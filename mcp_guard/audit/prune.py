"""Retention: delete old entries while keeping the rest of the chain verifiable.

Entries are only ever removed up to a signed checkpoint (the *anchor*): the entry
after it links to the anchor's hash, so verification starts from the anchor. In
the same transaction a ``retention`` entry records the prune, and a new signed
checkpoint of the head states the log's new first sequence number, so removing
more entries from the start later is evident.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict

from mcp_guard.audit.canonical import canonical_json
from mcp_guard.audit.chain import entry_hash, make_checkpoint
from mcp_guard.audit.models import AuditUnavailableError, RetentionError, format_time
from mcp_guard.audit.verify import verify


class PruneResult(BaseModel):
    """What a prune did. ``anchor_seq`` is None when nothing was old enough to delete."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deleted: int
    anchor_seq: int | None
    first_seq: int | None
    before: str


def prune_log(
    path: str | Path,
    key: Ed25519PrivateKey,
    before: datetime,
    *,
    retention_days: int,
    now: datetime,
    busy_timeout_ms: int = 2000,
) -> PruneResult:
    """Delete the entries older than ``before``, up to the newest signed checkpoint among them.

    Raises:
        RetentionError: ``before`` is later than ``now - retention_days`` (entries
            still inside the minimum retention), or the log does not verify.
        AuditFileError: the database is missing or not an audit log.
        AuditUnavailableError: the database cannot be written.
    """
    limit = now - timedelta(days=retention_days)
    if before > limit:
        raise RetentionError(
            f"refusing to prune entries newer than {format_time(limit)}: the minimum retention is "
            f"{retention_days} days (asked to prune before {format_time(before)})"
        )
    report = verify(path, key.public_key())
    if not report.ok:
        assert report.problem is not None
        raise RetentionError(f"refusing to prune a log that fails verification: {report.problem.message}")
    cutoff = format_time(before)
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout_ms / 1000)
    except sqlite3.Error as exc:
        raise AuditUnavailableError(f"cannot open {path}: {exc}") from None
    try:
        return _prune(conn, key, cutoff, format_time(now), retention_days)
    except sqlite3.Error as exc:
        raise AuditUnavailableError(f"cannot prune {path}: {exc}") from None
    finally:
        conn.close()


def _prune(
    conn: sqlite3.Connection, key: Ed25519PrivateKey, cutoff: str, now: str, retention_days: int
) -> PruneResult:
    conn.execute("BEGIN IMMEDIATE")
    try:
        anchor = conn.execute(
            "SELECT c.seq, c.hash FROM checkpoints c JOIN entries e ON e.seq = c.seq AND e.hash = c.hash "
            "WHERE e.time < ? ORDER BY c.seq DESC LIMIT 1",
            (cutoff,),
        ).fetchone()
        if anchor is None:
            conn.execute("ROLLBACK")
            first = conn.execute("SELECT MIN(seq) FROM entries").fetchone()[0]
            return PruneResult(deleted=0, anchor_seq=None, first_seq=first, before=cutoff)
        anchor_seq = int(anchor[0])
        deleted = conn.execute("DELETE FROM entries WHERE seq <= ?", (anchor_seq,)).rowcount
        head = conn.execute(
            "SELECT seq, hash, time FROM (SELECT seq, hash, time FROM entries ORDER BY seq DESC LIMIT 1) "
            "UNION ALL SELECT seq, hash, time FROM checkpoints WHERE seq = ? ORDER BY seq DESC LIMIT 1",
            (anchor_seq,),
        ).fetchone()
        seq, prev, last_time = int(head[0]) + 1, str(head[1]), str(head[2])
        time_ = max(now, last_time)
        record = canonical_json(
            {
                "action": "prune",
                "before": cutoff,
                "anchor_seq": anchor_seq,
                "deleted": deleted,
                "retention_days": retention_days,
            }
        )
        id_ = uuid4().hex
        h = entry_hash(seq, id_, time_, "retention", record, prev)
        conn.execute(
            "INSERT INTO entries (seq, id, time, kind, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, id_, time_, "retention", record, prev, h),
        )
        cp = make_checkpoint(key, seq, h, time_, anchor_seq + 1)
        conn.execute(
            "INSERT INTO checkpoints (seq, hash, time, first_seq, key_id, signature) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (cp.seq, cp.hash, cp.time, cp.first_seq, cp.key_id, cp.signature),
        )
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('pruned_through', ?)", (str(anchor_seq),)
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return PruneResult(deleted=deleted, anchor_seq=anchor_seq, first_seq=anchor_seq + 1, before=cutoff)
