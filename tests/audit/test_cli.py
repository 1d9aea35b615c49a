"""The ``audit`` CLI: verify exit codes, export filters, tail, report, prune."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcp_guard.audit import AuditConfig
from mcp_guard.audit.commands import register
from mcp_guard.signing import load_signing_key, public_key_pem

from .helpers import populate


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mcp-guard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


@pytest.fixture
def logged(config: AuditConfig) -> AuditConfig:
    populate(config, 30)
    return config


def common(config: AuditConfig) -> tuple[str, ...]:
    return ("--db", str(config.path), "--key", str(config.signing_key_path))


def test_verify_exits_0_when_intact(logged: AuditConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("audit", "verify", *common(logged)) == 0
    assert capsys.readouterr().out.startswith("OK: 30 entries (seq 1..30)")


def test_verify_accepts_a_public_key_file(logged: AuditConfig, tmp_path: Path) -> None:
    pub = tmp_path / "audit.pub"
    pub.write_text(public_key_pem(load_signing_key(logged.signing_key_path)))
    assert run("audit", "verify", "--db", str(logged.path), "--public-key", str(pub)) == 0


def test_verify_exits_1_and_names_the_problem_when_tampered(
    logged: AuditConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(logged.path) as db:
        db.execute("UPDATE entries SET kind = 'outcome' WHERE seq = 7")
    assert run("audit", "verify", *common(logged), "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problem"]["message"] == "seq 7: entry modified (hash mismatch)"


def test_verify_exits_2_for_missing_files(logged: AuditConfig, tmp_path: Path) -> None:
    assert (
        run("audit", "verify", "--db", str(tmp_path / "nope.db"), "--key", str(logged.signing_key_path)) == 2
    )
    assert run("audit", "verify", "--db", str(logged.path), "--key", str(tmp_path / "nope.pem")) == 2
    not_audit = tmp_path / "other.db"
    sqlite3.connect(not_audit).execute("CREATE TABLE t (x)").connection.close()
    assert run("audit", "verify", "--db", str(not_audit), "--key", str(logged.signing_key_path)) == 2


def test_export_jsonl_applies_filters(logged: AuditConfig, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    status = run(
        "audit", "export", *common(logged), "--format", "jsonl", "--tool", "send_email",
        "--decision", "BLOCK", "--user", "user1", "--output", str(out),
    )  # fmt: skip
    assert status == 0
    entries = [json.loads(line) for line in out.read_text().splitlines()]
    assert entries and all(e["record"]["tool"] == "send_email" for e in entries)
    assert all(
        e["record"]["decision"] == "BLOCK" and e["record"]["principal"]["user"] == "user1" for e in entries
    )
    assert [e["seq"] for e in entries] == [
        i for i in range(1, 31) if i % 3 == 1 and i % 4 == 1 and i % 2 == 1
    ]
    assert set(entries[0]) == {"seq", "id", "time", "kind", "record", "prev_hash", "hash"}


def test_export_csv_applies_a_time_range_and_agent(logged: AuditConfig, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    # StepClock: entry i is written at 2025-01-01T00:00:0i (one second apart).
    status = run(
        "audit", "export", *common(logged), "--format", "csv", "--since", "2025-01-01T00:00:05Z",
        "--until", "2025-01-01T00:00:15Z", "--agent", "cursor", "--kind", "decision", "-o", str(out),
    )  # fmt: skip
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["seq"]) for r in rows] == [6, 9, 12]
    assert rows[0]["agent"] == "cursor" and rows[0]["tool"] == "read_file" and rows[0]["rules"] == "rule-0"
    assert json.loads(rows[0]["record"])["session"] == "s1"


def test_tail_prints_the_last_entries(logged: AuditConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("audit", "tail", *common(logged), "-n", "3") == 0
    assert [json.loads(line)["seq"] for line in capsys.readouterr().out.splitlines()] == [28, 29, 30]


def test_report_maps_the_evidence_to_every_framework(logged: AuditConfig, tmp_path: Path) -> None:
    md = tmp_path / "report.md"
    assert run("audit", "report", *common(logged), "--format", "md", "-o", str(md)) == 0
    text = md.read_text()
    for control in (
        "CC6.1",
        "CC6.6",
        "CC7.2",
        "CC7.3",
        "§164.312(b)",
        "Art. 30",
        "Req. 10",
        "A.8.15",
        "A.8.16",
    ):
        assert control in text
    assert "EU AI Act Art. 12" in text and "EU AI Act Art. 19" in text and "**INTACT**" in text
    js = tmp_path / "report.json"
    assert run("audit", "report", *common(logged), "--format", "json", "-o", str(js)) == 0
    report = json.loads(js.read_text())
    assert report["summary"]["by_decision"] == {"ALLOW": 7, "APPROVAL_REQUIRED": 8, "BLOCK": 8, "WARN": 7}
    assert report["summary"]["blocked_reasons"] == {"secret in arguments": 8}
    assert report["integrity"]["ok"] is True and report["retention"]["minimum_days"] == 183
    assert {c["framework"] for c in report["controls"]} == {
        "SOC 2", "HIPAA", "GDPR", "PCI DSS", "ISO 27001", "EU AI Act",
    }  # fmt: skip


def test_prune_refuses_a_time_inside_retention(
    logged: AuditConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("audit", "prune", *common(logged), "--before", datetime.now(UTC).date().isoformat()) == 1
    assert "minimum retention" in capsys.readouterr().err


def test_prune_deletes_old_entries_up_to_a_checkpoint(logged: AuditConfig) -> None:
    # The entries are from 2025-01-01; with a zero-day retention everything before now may go.
    args = ("--before", "2025-01-01T00:00:25Z", "--retention-days", "0")
    assert run("audit", "prune", *common(logged), *args) == 0
    assert run("audit", "verify", *common(logged)) == 0
    with sqlite3.connect(logged.path) as db:
        assert db.execute("SELECT MIN(seq) FROM entries").fetchone()[0] == 22


def test_report_refuses_to_write_over_the_audit_database(
    logged: AuditConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    before = logged.path.read_bytes()
    assert run("audit", "report", *common(logged), "-o", str(logged.path)) == 2
    assert "refusing to write over the audit database" in capsys.readouterr().err
    assert logged.path.read_bytes() == before
    assert run("audit", "verify", *common(logged)) == 0


def test_export_refuses_to_overwrite_any_sqlite_database(
    logged: AuditConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "customers.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    before = other.read_bytes()
    assert run("audit", "export", *common(logged), "-o", str(other)) == 2
    assert f"refusing to overwrite {other}: it is an SQLite database" in capsys.readouterr().err
    assert other.read_bytes() == before


def test_a_failed_export_leaves_the_previous_output_file_as_it_was(
    logged: AuditConfig, tmp_path: Path
) -> None:
    previous = tmp_path / "previous.jsonl"
    previous.write_text('{"seq": 1}\n')
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("not an audit log")
    assert run("audit", "export", "--db", str(not_a_log), "-o", str(previous)) == 2
    assert previous.read_text() == '{"seq": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_an_export_replaces_its_output_file_once_written(logged: AuditConfig, tmp_path: Path) -> None:
    out = tmp_path / "entries.jsonl"
    out.write_text("stale\n")
    assert run("audit", "export", *common(logged), "-o", str(out)) == 0
    assert [json.loads(line)["seq"] for line in out.read_text().splitlines()] == list(range(1, 31))


@pytest.mark.parametrize("command", ["report", "prune"])
def test_a_negative_retention_is_refused(
    logged: AuditConfig, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", command, *common(logged), "--retention-days", "-1"]
    if command == "prune":
        argv += ["--before", "2999-01-01"]
    with pytest.raises(SystemExit) as exited:
        run(*argv)
    assert exited.value.code == 2
    assert "--retention-days: expected 0 or more days, not -1" in capsys.readouterr().err


def mcp_guard_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real ``mcp-guard`` command in a child process, importing this checkout."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "mcp_guard", *argv], capture_output=True, text=True, env=env, check=False
    )


def test_verify_names_a_hand_edited_checkpoint_row_and_exits_1(logged: AuditConfig) -> None:
    with sqlite3.connect(logged.path) as db:  # the file need not keep mcp-guard's column types
        db.execute("ALTER TABLE checkpoints RENAME TO typed")
        db.execute(
            "CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, seq, hash, time, first_seq, key_id, signature)"
        )
        db.execute("INSERT INTO checkpoints SELECT * FROM typed")
        db.execute("DROP TABLE typed")
        db.execute("UPDATE checkpoints SET seq = 'eleven' WHERE id = 2")
    db.close()
    done = mcp_guard_cli("audit", "verify", *common(logged))
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(
        "TAMPERED: checkpoint row 2: seq is not an integer - the checkpoints table was edited"
    )
    assert "Traceback" not in done.stderr and "pydantic" not in done.stderr


def test_verify_locates_an_entry_holding_text_that_is_not_utf8_and_exits_1(logged: AuditConfig) -> None:
    with sqlite3.connect(logged.path) as db:
        db.execute("UPDATE entries SET kind = CAST(X'ff' AS TEXT) WHERE seq = 9")
    db.close()
    done = mcp_guard_cli("audit", "verify", *common(logged))
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("TAMPERED: seq 9: entry modified (text that is not UTF-8)")


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("'not json'", "seq 5: entry modified (hash mismatch)"),
        ("CAST(X'7bff7d' AS TEXT)", "seq 5: entry modified (text that is not UTF-8)"),
    ],
)
def test_report_on_a_log_with_a_record_that_is_not_json_says_tampered_and_exits_1(
    logged: AuditConfig, tmp_path: Path, record: str, problem: str
) -> None:
    with sqlite3.connect(logged.path) as db:
        db.execute(f"UPDATE entries SET record = {record} WHERE seq = 5")
    db.close()
    out = tmp_path / "report.json"
    done = mcp_guard_cli("audit", "report", *common(logged), "--format", "json", "--output", str(out))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(out.read_text())
    assert report["integrity"]["problem"]["message"] == problem
    assert report["summary"]["entries"] == 30
    assert sum(report["summary"]["by_decision"].values()) == 30  # the edited one counts as "?"


@pytest.mark.parametrize(
    ("command", "option"),
    [("export", "--since"), ("export", "--until"), ("prune", "--before")],
)
def test_a_time_option_that_is_not_a_time_is_named_in_the_error(
    logged: AuditConfig, command: str, option: str
) -> None:
    done = mcp_guard_cli("audit", command, *common(logged), option, "yesterday")
    assert done.returncode == 2
    assert f"argument {option}: expected an RFC 3339 time or date, not 'yesterday'" in done.stderr
    assert "Traceback" not in done.stderr
