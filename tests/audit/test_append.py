"""Appending: durable receipts, a gapless chain, group commit, signed checkpoints, failing closed."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from mcp_guard.audit import (
    AuditConfig,
    AuditLog,
    AuditReceipt,
    AuditUnavailableError,
    SqliteAuditLog,
    store_sqlite,
    verify,
)
from mcp_guard.audit.chain import entry_hash
from mcp_guard.audit.models import GENESIS_HASH

from .helpers import StepClock, decision_record, public_key

pytestmark = pytest.mark.anyio


async def test_append_returns_a_receipt_of_the_committed_entry(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config, clock=StepClock()) as log:
        assert isinstance(log, AuditLog)
        first = await log.append("decision", decision_record(1))
        second = await log.append("outcome", {"status": "ok"})
    assert (first.seq, second.seq) == (1, 2)
    with sqlite3.connect(config.path) as db:
        rows = db.execute("SELECT seq, id, time, kind, record, prev_hash, hash FROM entries").fetchall()
    assert [r[0] for r in rows] == [1, 2]
    assert rows[0][1] == first.id and rows[0][6] == first.hash and rows[0][5] == GENESIS_HASH
    assert rows[1][5] == first.hash
    assert rows[0][2] == "2025-01-01T00:00:01.000000Z"
    assert entry_hash(*rows[1][:6]) == second.hash


async def test_concurrent_appends_are_all_durable_gapless_and_verifiable(config: AuditConfig) -> None:
    receipts: list[AuditReceipt] = []

    async def one(i: int) -> None:
        receipts.append(await log.append("decision", decision_record(i)))

    with anyio.fail_after(20):
        async with SqliteAuditLog.open(config) as log:
            async with anyio.create_task_group() as tg:
                for i in range(500):
                    tg.start_soon(one, i)
            assert sorted(r.seq for r in receipts) == list(range(1, 501))
            with sqlite3.connect(config.path) as other:  # visible to another connection: committed
                assert other.execute("SELECT COUNT(*), MAX(seq) FROM entries").fetchone() == (500, 500)
                transactions = other.execute("SELECT COUNT(DISTINCT time) FROM entries").fetchone()[0]
    assert transactions < 500  # group commit: several entries share one transaction
    report = verify(config.path, public_key(config))
    assert report.ok, report.problem
    assert report.entries == 500 and report.last_checkpoint_seq == 500


async def test_a_signed_checkpoint_is_written_every_n_entries_and_at_close(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        for i in range(25):
            await log.append("decision", decision_record(i))
    with sqlite3.connect(config.path) as db:
        seqs = [r[0] for r in db.execute("SELECT seq FROM checkpoints ORDER BY id")]
    assert seqs == [1, 11, 21, 25]


async def test_reopening_continues_the_same_chain(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", decision_record(1))
    async with SqliteAuditLog.open(config) as log:
        receipt = await log.append("policy_reload", {"digest": "abc"})
    assert receipt.seq == 2
    assert verify(config.path, public_key(config)).ok


async def test_entry_times_never_go_backwards_even_if_the_clock_does(config: AuditConfig) -> None:
    clock = StepClock()
    async with SqliteAuditLog.open(config, clock=clock) as log:
        await log.append("decision", {})
        clock.now = clock.now.replace(year=2020)
        await log.append("decision", {})
    with sqlite3.connect(config.path) as db:
        times = [r[0] for r in db.execute("SELECT time FROM entries ORDER BY seq")]
    assert times[1] == times[0]


async def test_invalid_kinds_and_records_are_rejected_before_enqueueing(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        with pytest.raises(ValueError, match="invalid audit kind"):
            await log.append("Decision", {})
        with pytest.raises(ValueError):
            await log.append("decision", {"risk": float("nan")})
        with pytest.raises(TypeError):
            await log.append("decision", {"x": object()})
        assert (await log.append("custom_kind", {})).seq == 1


async def test_append_fails_closed_while_another_connection_holds_the_write_lock(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", {})
        blocker = sqlite3.connect(config.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        with anyio.fail_after(5), pytest.raises(AuditUnavailableError, match="locked"):
            await log.append("decision", {})
        blocker.execute("ROLLBACK")
        blocker.close()
        assert (await log.append("decision", {})).seq == 2  # recovers once the lock is gone
    assert verify(config.path, public_key(config)).ok


class ThreadNotingClock(StepClock):
    """Notes which thread read the time, i.e. which thread committed the entry."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def __call__(self) -> datetime:
        self.threads.append(threading.current_thread().name)
        return super().__call__()


async def test_a_lone_write_ahead_append_commits_on_the_callers_thread(config: AuditConfig) -> None:
    clock = ThreadNotingClock()
    async with SqliteAuditLog.open(config, clock=clock) as log:
        await log.append("decision", decision_record(1))
        assert clock.threads == [threading.current_thread().name]  # no hand-off to the writer
        await log.append("outcome", {"status": "ok"}, write_ahead=False)
        assert clock.threads[1].startswith("audit-writer")  # records of done things never block the loop
    assert verify(config.path, public_key(config)).ok


async def test_an_outcome_rides_along_with_the_next_decisions_commit(
    config: AuditConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_sqlite, "_DEFER_S", 30.0)  # only the decision can commit it here
    clock = ThreadNotingClock()
    async with SqliteAuditLog.open(config, clock=clock) as log:
        outcome: list[AuditReceipt] = []

        async def record_outcome() -> None:
            outcome.append(await log.append("outcome", {"status": "ok"}, write_ahead=False))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(record_outcome)
                await wait_all_tasks_blocked()
                assert outcome == []  # not committed on its own
                decision = await log.append("decision", decision_record(2))
        assert (outcome[0].seq, decision.seq) == (1, 2)
        assert clock.threads == [threading.current_thread().name]  # one transaction, no hand-off
        # the hand-over timer left with its entries: a later outcome gets its own full wait
        assert log._defer_timer is None
    assert verify(config.path, public_key(config)).ok


async def test_a_locked_database_never_stalls_the_event_loop_and_the_append_waits_for_the_lock(
    config: AuditConfig,
) -> None:
    patient = config.model_copy(update={"busy_timeout_ms": 10_000})
    async with SqliteAuditLog.open(patient) as log:
        await log.append("decision", {})
        blocker = sqlite3.connect(config.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        receipts: list[AuditReceipt] = []

        async def append() -> None:
            receipts.append(await log.append("decision", {}))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(append)
                started = time.monotonic()
                await wait_all_tasks_blocked()  # the append waits on the writer, not in SQLite
                assert time.monotonic() - started < 1 and receipts == []
                blocker.execute("ROLLBACK")
            blocker.close()
        assert [r.seq for r in receipts] == [2]
    assert verify(config.path, public_key(config)).ok


async def test_appends_fail_closed_once_the_backlog_is_full(config: AuditConfig) -> None:
    small = config.model_copy(update={"busy_timeout_ms": 10_000, "max_pending": 3})
    async with SqliteAuditLog.open(small) as log:
        blocker = sqlite3.connect(config.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        refused: list[str] = []
        receipts: list[AuditReceipt] = []

        async def append(i: int) -> None:
            try:
                receipts.append(await log.append("outcome", {"i": i}, write_ahead=False))
            except AuditUnavailableError as exc:
                refused.append(exc.reason)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(6):
                    tg.start_soon(append, i)
                await anyio.lowlevel.checkpoint()  # every append has queued or been refused
                blocker.execute("ROLLBACK")
        blocker.close()
    assert refused and all("backlog is full" in r for r in refused)
    assert sorted(r.seq for r in receipts) == list(range(1, len(receipts) + 1))
    assert len(receipts) + len(refused) == 6
    assert verify(config.path, public_key(config)).ok


async def test_append_fails_closed_when_the_database_file_is_removed(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", {})
        os.unlink(config.path)
        with pytest.raises(AuditUnavailableError, match="was removed"):
            await log.append("decision", {})


async def test_append_fails_closed_when_the_database_file_is_replaced(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", {})
        replacement = config.path.with_suffix(".new")
        replacement.write_bytes(b"")
        os.replace(replacement, config.path)
        with pytest.raises(AuditUnavailableError, match="replaced"):
            await log.append("decision", {})


async def test_append_after_close_fails_closed(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        pass
    with pytest.raises(AuditUnavailableError, match="closed"):
        await log.append("decision", {})


async def test_opening_an_unwritable_location_fails_closed(tmp_path: Path, config: AuditConfig) -> None:
    (tmp_path / "afile").write_text("")
    blocked = config.model_copy(update={"path": tmp_path / "afile" / "audit.db"})
    with pytest.raises(AuditUnavailableError, match="cannot create directory"):
        async with SqliteAuditLog.open(blocked):
            pass
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AuditUnavailableError, match="not a database"):
        async with SqliteAuditLog.open(config.model_copy(update={"path": garbage})):
            pass


async def test_a_signing_key_readable_by_others_prevents_opening(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config):
        pass
    config.signing_key_path.chmod(0o640)
    with pytest.raises(AuditUnavailableError, match="chmod 600"):
        async with SqliteAuditLog.open(config):
            pass
