"""Verification: recompute the whole chain and every checkpoint; report the first problem.

Rows are streamed in sequence order; each entry's hash is recomputed from its
fields (the record's stored canonical text is hashed as is), its ``prev_hash``
must equal the previous entry's hash, and sequence numbers must be gapless.
Checkpoint signatures are checked with the public key given by the caller --
never one found in the file -- so a re-hashed forgery made without the private
key fails. Problems are ordered by the sequence number where they occur and the
first one is reported.
"""

from __future__ import annotations

import sqlite3
import time as _time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_guard.audit.chain import checkpoint_valid, entry_hash
from mcp_guard.audit.models import GENESIS_HASH, Checkpoint
from mcp_guard.audit.schema import AuditFileError, open_readonly, read_checkpoints
from mcp_guard.signing import PublicKeyLike, SigningKeyError, key_id

_ENTRY_TEXT_COLUMNS = "id, time, kind, record, prev_hash, hash"

ProblemCode = Literal[
    "entry_modified",
    "entry_removed",
    "entry_reordered",
    "head_removed",
    "tail_truncated",
    "checkpoint_forged",
    "checkpoint_malformed",
    "checkpoint_mismatch",
    "checkpoints_removed",
    "unreadable",
]


class VerifyProblem(BaseModel):
    """One integrity problem: what (``code``), where (``seq``) and a sentence for humans."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ProblemCode
    seq: int | None
    message: str


class VerifyReport(BaseModel):
    """The result of :func:`verify`. ``ok`` is true when the log is intact."""

    model_config = ConfigDict(extra="forbid")

    path: str
    ok: bool
    problem: VerifyProblem | None = None
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    anchor_seq: int | None = Field(default=None, description="checkpoint the chain starts from after pruning")
    unsigned_tail: int = Field(default=0, description="entries after the last signed checkpoint")
    key_id: str = ""
    warnings: list[str] = Field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> str:
        """One line for humans: ``OK ...`` or ``TAMPERED: <problem>``."""
        span = f"seq {self.first_seq}..{self.last_seq}" if self.first_seq is not None else "no entries"
        if self.ok:
            return (
                f"OK: {self.entries} entries ({span}), {self.checkpoints} signed checkpoints, "
                f"last at seq {self.last_checkpoint_seq}; verified in {self.elapsed_s:.2f}s"
            )
        assert self.problem is not None
        return f"TAMPERED: {self.problem.message}"


def verify(path: str | Path, public_key: PublicKeyLike) -> VerifyReport:
    """Verify the audit log at ``path`` against the checkpoint signing ``public_key``.

    Raises:
        AuditFileError: the file is missing, not SQLite, or not an audit log.
        SigningKeyError: ``public_key`` is not an Ed25519 public key.
    """
    started = _time.perf_counter()
    kid = key_id(public_key)
    conn = open_readonly(path)
    try:
        report = _verify(conn, str(path), public_key, kid)
    except sqlite3.DatabaseError as exc:
        raise AuditFileError(f"{path}: cannot read: {exc}") from None
    finally:
        conn.close()
    report.elapsed_s = _time.perf_counter() - started
    return report


def _verify(conn: sqlite3.Connection, path: str, public_key: PublicKeyLike, kid: str) -> VerifyReport:
    checkpoints, malformed = read_checkpoints(conn)
    n_entries, first, last = conn.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM entries").fetchone()
    report = VerifyReport(path=path, ok=True, entries=n_entries, first_seq=first, last_seq=last, key_id=kid)
    report.checkpoints = len(set(checkpoints))
    report.warnings.extend(_duplicated_checkpoints(checkpoints))
    problems: list[tuple[int, int, VerifyProblem]] = []  # (position, priority, problem)

    def add(position: int, priority: int, code: ProblemCode, seq: int | None, message: str) -> None:
        problems.append((position, priority, VerifyProblem(code=code, seq=seq, message=message)))

    for row in malformed:
        add(
            row.seq if row.seq is not None else 0,
            1,
            "checkpoint_malformed",
            row.seq,
            f"checkpoint row {row.row_id}: {row.why} - the checkpoints table was edited",
        )

    valid: list[Checkpoint] = []
    for cp in checkpoints:
        if checkpoint_valid(public_key, cp):
            valid.append(cp)
        else:
            add(
                cp.seq,
                1,
                "checkpoint_forged",
                cp.seq,
                f"checkpoint at seq {cp.seq}: signature does not verify with the given public key "
                f"(key id {kid}; checkpoint claims key id {cp.key_id}) - the log was forged or re-signed",
            )
    if valid:
        report.last_checkpoint_seq = max(cp.seq for cp in valid)
    claimed_first = max((cp.first_seq for cp in valid), default=1)
    anchor: Checkpoint | None = None
    if first is not None and first > 1:
        anchor = next((cp for cp in reversed(valid) if cp.seq == first - 1), None)
        if anchor is None:
            add(
                first,
                0,
                "head_removed",
                first,
                f"entries removed at the start: the log begins at seq {first} "
                f"but no signed checkpoint anchors seq {first - 1}",
            )
        else:
            report.anchor_seq = anchor.seq
    if first is not None and first > claimed_first:
        add(
            first,
            0,
            "head_removed",
            first,
            f"entries removed at the start: a signed checkpoint says the log starts at seq {claimed_first}, "
            f"but it starts at seq {first}",
        )
    if first is not None and not checkpoints and not malformed:
        add(
            first,
            2,
            "checkpoints_removed",
            None,
            "the log has entries but no checkpoints: its authenticity cannot be established "
            "(checkpoints were deleted)",
        )

    by_seq: dict[int, list[Checkpoint]] = {}
    for cp in valid:
        if first is not None and first <= cp.seq:
            by_seq.setdefault(cp.seq, []).append(cp)
    walk_problem = _walk(conn, first, anchor.hash if anchor else GENESIS_HASH, by_seq)
    if walk_problem is not None:
        problems.append(walk_problem)

    end = last if last is not None else claimed_first - 1
    beyond = [cp.seq for cp in valid if cp.seq > end and cp.seq >= claimed_first]
    if beyond:
        m = max(beyond)
        where = f"the log ends at seq {last}" if last is not None else "the log has no entries"
        add(end + 1, 0, "tail_truncated", end + 1, f"tail truncated: last checkpoint says seq {m}, {where}")

    if problems:
        problems.sort(key=lambda p: (p[0], p[1]))
        report.ok = False
        report.problem = problems[0][2]
    if last is not None and report.last_checkpoint_seq is not None and last > report.last_checkpoint_seq:
        report.unsigned_tail = last - max(report.last_checkpoint_seq, (first or 1) - 1)
        report.warnings.append(
            f"{report.unsigned_tail} entries after seq {report.last_checkpoint_seq} are not yet covered "
            "by a signed checkpoint (the log is open, or was not closed cleanly)"
        )
    return report


def _walk(
    conn: sqlite3.Connection, first: int | None, prev: str, by_seq: dict[int, list[Checkpoint]]
) -> tuple[int, int, VerifyProblem] | None:
    """Recompute the chain; the first entry-level problem, or None."""
    if first is None:
        return None
    expected = first
    cursor = conn.execute("SELECT seq, id, time, kind, record, prev_hash, hash FROM entries ORDER BY seq")
    cursor.arraysize = 4096
    rows = iter(cursor)
    while True:
        try:
            row = next(rows, None)
        except sqlite3.OperationalError:  # the row holds text that is not UTF-8 (or the read failed)
            undecodable = _first_undecodable_entry(conn, expected)
            if undecodable is None:
                raise
            if undecodable != expected:
                return _gap(expected, undecodable)
            return (
                undecodable,
                0,
                VerifyProblem(
                    code="entry_modified",
                    seq=undecodable,
                    message=f"seq {undecodable}: entry modified (text that is not UTF-8)",
                ),
            )
        if row is None:
            return None
        seq, id_, time_, kind, record, prev_hash, stored = row
        if seq != expected:
            return _gap(expected, seq)
        if prev_hash != prev:
            return (
                seq,
                0,
                VerifyProblem(
                    code="entry_reordered",
                    seq=seq,
                    message=f"seq {seq}: out of order or replaced - prev_hash does not match the hash of "
                    f"seq {seq - 1} (prev_hash mismatch)",
                ),
            )
        try:
            computed = entry_hash(seq, id_, time_, kind, record, prev_hash)
        except (TypeError, UnicodeEncodeError):
            computed = ""
        if computed != stored:
            return (
                seq,
                0,
                VerifyProblem(
                    code="entry_modified", seq=seq, message=f"seq {seq}: entry modified (hash mismatch)"
                ),
            )
        cps = by_seq.get(seq)
        if cps is not None and any(cp.hash != stored for cp in cps):
            return (
                seq,
                0,
                VerifyProblem(
                    code="checkpoint_mismatch",
                    seq=seq,
                    message=f"seq {seq}: chain hash differs from the signed checkpoint - "
                    f"entries up to seq {seq} were altered and re-hashed",
                ),
            )
        prev = stored
        expected += 1


def _gap(expected: int, seq: int) -> tuple[int, int, VerifyProblem]:
    """The problem of finding entry ``seq`` where entry ``expected`` should be."""
    return (
        expected,
        0,
        VerifyProblem(
            code="entry_removed",
            seq=expected - 1,
            message=f"entry removed: gap after seq {expected - 1} (next entry is seq {seq})",
        ),
    )


def _first_undecodable_entry(conn: sqlite3.Connection, from_seq: int) -> int | None:
    """The first entry from ``from_seq`` on holding text that is not UTF-8, if any.

    Such text is not the kind of damage SQLite reports as a read error but a value
    written by hand: it is an edited entry, located like any other. Only called once
    reading rows as text has failed, so the common path pays nothing for it.
    """
    previous = conn.text_factory
    conn.text_factory = bytes
    try:
        cursor = conn.execute(
            f"SELECT seq, {_ENTRY_TEXT_COLUMNS} FROM entries WHERE seq >= ? ORDER BY seq", (from_seq,)
        )
        for seq, *texts in cursor:
            for text in texts:
                if isinstance(text, bytes) and not _is_utf8(text):
                    return int(seq)
    finally:
        conn.text_factory = previous
    return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _duplicated_checkpoints(checkpoints: list[Checkpoint]) -> list[str]:
    """Warnings for checkpoints stored more than once. A copy states nothing new, so the
    log's claims still hold, but mcp-guard writes each checkpoint once: someone else wrote
    to the file."""
    counts: dict[Checkpoint, int] = {}
    for cp in checkpoints:
        counts[cp] = counts.get(cp, 0) + 1
    return [
        f"the checkpoint at seq {cp.seq} appears {n} times: mcp-guard writes each checkpoint once, "
        "so the checkpoints table was edited"
        for cp, n in counts.items()
        if n > 1
    ]


__all__ = ["AuditFileError", "SigningKeyError", "VerifyProblem", "VerifyReport", "verify"]
