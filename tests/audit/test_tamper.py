"""Tampering with a real SQLite file through plain sqlite3 is detected and located."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from mcp_guard.audit import AuditConfig, verify
from mcp_guard.audit.chain import entry_hash

from .helpers import populate, public_key


@pytest.fixture
def logged(config: AuditConfig) -> AuditConfig:
    """30 entries, checkpoints at seq 1, 11, 21 and 30 (close)."""
    populate(config, 30)
    return config


def _sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    with db:
        for s in statements:
            db.execute(s)
    db.close()


def test_an_intact_log_verifies(logged: AuditConfig) -> None:
    report = verify(logged.path, public_key(logged))
    assert report.ok and report.problem is None
    assert (report.entries, report.first_seq, report.last_seq) == (30, 1, 30)
    assert report.checkpoints == 4 and report.last_checkpoint_seq == 30 and report.unsigned_tail == 0


def test_changing_one_byte_of_a_record_is_detected_at_that_entry(logged: AuditConfig) -> None:
    db = sqlite3.connect(logged.path)
    record = db.execute("SELECT record FROM entries WHERE seq = 15").fetchone()[0]
    i = record.index("/tmp/15")
    with db:
        db.execute(
            "UPDATE entries SET record = ? WHERE seq = 15", (record[:i] + "/tmp/16" + record[i + 7 :],)
        )
    db.close()
    report = verify(logged.path, public_key(logged))
    assert not report.ok and report.problem is not None
    assert report.problem.code == "entry_modified" and report.problem.seq == 15
    assert report.problem.message == "seq 15: entry modified (hash mismatch)"


def test_deleting_an_entry_is_detected_as_a_gap(logged: AuditConfig) -> None:
    _sql(logged.path, "DELETE FROM entries WHERE seq = 15")
    problem = verify(logged.path, public_key(logged)).problem
    assert problem is not None and problem.code == "entry_removed"
    assert problem.message == "entry removed: gap after seq 14 (next entry is seq 16)"


def test_swapping_two_entries_is_detected_as_out_of_order(logged: AuditConfig) -> None:
    _sql(
        logged.path,
        "UPDATE entries SET seq = -15 WHERE seq = 15",
        "UPDATE entries SET seq = 15 WHERE seq = 16",
        "UPDATE entries SET seq = 16 WHERE seq = -15",
    )
    problem = verify(logged.path, public_key(logged)).problem
    assert problem is not None and problem.code == "entry_reordered" and problem.seq == 15
    assert "prev_hash mismatch" in problem.message


def test_cutting_the_tail_is_detected_against_the_last_checkpoint(logged: AuditConfig) -> None:
    _sql(logged.path, "DELETE FROM entries WHERE seq > 25")
    problem = verify(logged.path, public_key(logged)).problem
    assert problem is not None and problem.code == "tail_truncated"
    assert problem.message == "tail truncated: last checkpoint says seq 30, the log ends at seq 25"


def test_removing_entries_from_the_start_is_detected(logged: AuditConfig) -> None:
    _sql(logged.path, "DELETE FROM entries WHERE seq <= 5")
    problem = verify(logged.path, public_key(logged)).problem
    assert problem is not None and problem.code == "head_removed" and problem.seq == 6


def test_deleting_the_checkpoints_is_detected(logged: AuditConfig) -> None:
    _sql(logged.path, "DELETE FROM checkpoints")
    problem = verify(logged.path, public_key(logged)).problem
    assert problem is not None and problem.code == "checkpoints_removed"


def test_rehashing_the_chain_in_place_contradicts_the_signed_checkpoints(logged: AuditConfig) -> None:
    db = sqlite3.connect(logged.path)
    rows = db.execute(
        "SELECT seq, id, time, kind, record, prev_hash FROM entries WHERE seq >= 15 ORDER BY seq"
    )
    prev = db.execute("SELECT hash FROM entries WHERE seq = 14").fetchone()[0]
    with db:
        for seq, id_, time, kind, stored, _ in rows.fetchall():
            record = stored
            if seq == 15:
                assert '"decision":"WARN"' in record
                record = record.replace('"decision":"WARN"', '"decision":"ALLOW"')
            h = entry_hash(seq, id_, time, kind, record, prev)
            db.execute(
                "UPDATE entries SET record = ?, prev_hash = ?, hash = ? WHERE seq = ?", (record, prev, h, seq)
            )
            prev = h
    db.close()
    problem = verify(logged.path, public_key(logged)).problem
    assert problem is not None and problem.code == "checkpoint_mismatch" and problem.seq == 21


def test_a_rehashed_forgery_without_the_signing_key_is_detected(tmp_path: Path, logged: AuditConfig) -> None:
    forged = logged.model_copy(
        update={"path": tmp_path / "forged.db", "signing_key_path": tmp_path / "attacker" / "key.pem"}
    )
    populate(forged, 30)  # same shape and content, consistent chain, checkpoints signed by another key
    os.replace(forged.path, logged.path)
    report = verify(logged.path, public_key(logged))
    assert report.problem is not None and report.problem.code == "checkpoint_forged"
    assert report.problem.seq == 1
    assert "signature does not verify with the given public key" in report.problem.message


_UNTYPED_CHECKPOINTS = (
    "ALTER TABLE checkpoints RENAME TO typed",
    "CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, seq, hash, time, first_seq, key_id, signature)",
    "INSERT INTO checkpoints SELECT * FROM typed",
    "DROP TABLE typed",
)
"""A hostile file need not keep mcp-guard's column types: without them SQLite stores any value as given."""


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ("UPDATE checkpoints SET seq = 'eleven' WHERE seq = 11", "seq is not an integer"),
        ("UPDATE checkpoints SET seq = 11.0 WHERE seq = 11", "seq is not an integer"),
        ("UPDATE checkpoints SET seq = NULL WHERE seq = 11", "seq is not an integer"),
        ("UPDATE checkpoints SET first_seq = '1' WHERE seq = 11", "first_seq is not an integer"),
        ("UPDATE checkpoints SET seq = 1e300 WHERE seq = 11", "seq is not an integer"),
        ("UPDATE checkpoints SET signature = X'00ff' WHERE seq = 11", "signature is not UTF-8 text"),
        ("UPDATE checkpoints SET key_id = CAST(X'ff' AS TEXT) WHERE seq = 11", "key_id is not UTF-8 text"),
        ("UPDATE checkpoints SET hash = 5 WHERE seq = 11", "hash is not text"),
        ("UPDATE checkpoints SET time = NULL WHERE seq = 11", "time is not text"),
    ],
)
def test_a_checkpoint_row_of_the_wrong_shape_is_reported_as_malformed(
    logged: AuditConfig, edit: str, why: str
) -> None:
    _sql(logged.path, *_UNTYPED_CHECKPOINTS, edit)
    report = verify(logged.path, public_key(logged))
    assert not report.ok and report.problem is not None
    assert report.problem.code == "checkpoint_malformed"
    assert report.problem.message == f"checkpoint row 2: {why} - the checkpoints table was edited"


def test_an_entry_holding_text_that_is_not_utf8_is_reported_as_modified_at_that_entry(
    logged: AuditConfig,
) -> None:
    _sql(logged.path, "UPDATE entries SET record = CAST(X'7bff7d' AS TEXT) WHERE seq = 5")
    report = verify(logged.path, public_key(logged))
    assert report.problem is not None
    assert (report.problem.code, report.problem.seq) == ("entry_modified", 5)
    assert report.problem.message == "seq 5: entry modified (text that is not UTF-8)"


def test_a_duplicated_checkpoint_row_is_reported_by_verify(logged: AuditConfig) -> None:
    _sql(
        logged.path,
        "INSERT INTO checkpoints (seq, hash, time, first_seq, key_id, signature) "
        "SELECT seq, hash, time, first_seq, key_id, signature FROM checkpoints WHERE seq = 11",
    )
    report = verify(logged.path, public_key(logged))
    assert report.ok  # the copy states nothing new: no claim of the log is false
    assert report.checkpoints == 4
    assert report.warnings == [
        "the checkpoint at seq 11 appears 2 times: mcp-guard writes each checkpoint once, "
        "so the checkpoints table was edited"
    ]
