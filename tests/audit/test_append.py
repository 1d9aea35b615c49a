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
        self.writer_committing = threading.Event()

    def __call__(self) -> datetime:
        self.threads.append(threading.current_thread().name)
        if self.threads[-1].startswith("audit-writer"):
            self.writer_committing.set()
        return super().__call__()


async def test_a_lone_write_ahead_append_commits_on_the_callers_thread(config: AuditConfig) -> None:
    clock = ThreadNotingClock()
    async with SqliteAuditLog.open(config, clock=clock) as log:
        await log.append("decision", decision_record(1))
        assert clock.threads == [threading.current_thread().name]  # no hand-off to the writer
        log.append_behind("outcome", lambda: {"status": "ok"}, not_expected)
        with anyio.fail_after(5):
            await anyio.to_thread.run_sync(clock.writer_committing.wait)  # handed over by the timer
        assert clock.threads[1].startswith("audit-writer")  # records of done things never block the loop
    assert kinds(config.path) == ["decision", "outcome"]
    assert verify(config.path, public_key(config)).ok


def not_expected(exc: AuditUnavailableError) -> None:
    raise AssertionError(f"an entry appended behind failed: {exc.reason}")


def kinds(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [kind for (kind,) in db.execute("SELECT kind FROM entries ORDER BY seq")]


async def test_append_behind_returns_before_the_record_is_built(config: AuditConfig) -> None:
    built: list[str] = []

    def build() -> dict[str, str]:
        built.append("outcome")
        return {"status": "ok"}

    async with SqliteAuditLog.open(config) as log:
        log.append_behind("outcome", build, not_expected)
        assert built == []  # the caller's step (answering its client) goes on first
        await anyio.lowlevel.checkpoint()
        assert built == ["outcome"]
    assert kinds(config.path) == ["outcome"]


async def test_entries_appended_behind_just_before_the_log_closes_are_still_written(
    config: AuditConfig,
) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", decision_record(1))
        for i in range(3):
            log.append_behind("outcome", lambda i=i: {"i": i}, not_expected)  # never built before the exit
    assert kinds(config.path) == ["decision", "outcome", "outcome", "outcome"]
    with sqlite3.connect(config.path) as db:
        records = [r for (r,) in db.execute("SELECT record FROM entries WHERE kind = 'outcome' ORDER BY seq")]
    assert records == ['{"i":0}', '{"i":1}', '{"i":2}']  # in the order they were appended
    assert verify(config.path, public_key(config)).ok


async def test_a_record_appended_behind_that_is_not_json_goes_to_on_failure_and_the_log_goes_on(
    config: AuditConfig,
) -> None:
    failures: list[str] = []
    async with SqliteAuditLog.open(config) as log:
        log.append_behind(
            "outcome", lambda: {"latency_ms": float("nan")}, lambda e: failures.append(e.reason)
        )
        log.append_behind("outcome", lambda: {"x": object()}, lambda e: failures.append(e.reason))
        await anyio.lowlevel.checkpoint()
        assert len(failures) == 2
        assert failures[0].startswith("the outcome record cannot be encoded: ")
        assert "NaN" in failures[0] or "nan" in failures[0]
        assert "object is not JSON" in failures[1]
        await log.append("decision", decision_record(1))
    assert kinds(config.path) == ["decision"]


async def test_a_builder_that_fails_goes_to_on_failure_and_the_entries_appended_with_it_are_written(
    config: AuditConfig,
) -> None:
    failures: list[str] = []

    def broken() -> dict[str, object]:
        raise KeyError("result")

    async with SqliteAuditLog.open(config) as log:
        log.append_behind("outcome", lambda: {"i": 0}, not_expected)
        log.append_behind("outcome", broken, lambda e: failures.append(e.reason))
        log.append_behind("outcome", lambda: {"i": 2}, not_expected)
        await anyio.lowlevel.checkpoint()
        assert failures == ["internal error while building the outcome record: KeyError('result')"]
    assert kinds(config.path) == ["outcome", "outcome"]


async def test_append_behind_refuses_an_invalid_kind_at_once(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        with pytest.raises(ValueError, match="invalid audit kind 'Outcome'"):
            log.append_behind("Outcome", lambda: {}, not_expected)


async def test_an_entry_appended_behind_that_cannot_be_committed_goes_to_on_failure(
    config: AuditConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_sqlite, "_DEFER_S", 30.0)  # only the decision can commit it here
    failures: list[str] = []
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", decision_record(1))
        log.append_behind("outcome", lambda: {"status": "ok"}, lambda e: failures.append(e.reason))
        await anyio.lowlevel.checkpoint()  # built, waiting to ride along
        os.unlink(config.path)
        with pytest.raises(AuditUnavailableError, match="was removed"):
            await log.append("decision", decision_record(2))
        assert failures == [f"database file {config.path} was removed"]


async def test_an_entry_appended_behind_after_the_log_closed_goes_to_on_failure(config: AuditConfig) -> None:
    failures: list[str] = []
    async with SqliteAuditLog.open(config) as log:
        pass
    log.append_behind("outcome", lambda: {"status": "ok"}, lambda e: failures.append(e.reason))
    await anyio.lowlevel.checkpoint()
    assert failures == ["the audit log is closed"]


async def test_an_outcome_rides_along_with_the_next_decisions_commit(
    config: AuditConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_sqlite, "_DEFER_S", 30.0)  # only the decision can commit it here
    clock = ThreadNotingClock()
    async with SqliteAuditLog.open(config, clock=clock) as log:
        log.append_behind("outcome", lambda: {"status": "ok"}, not_expected)
        await anyio.lowlevel.checkpoint()  # built
        assert clock.threads == []  # not committed on its own
        decision = await log.append("decision", decision_record(2))
        assert decision.seq == 2 and kinds(config.path) == ["outcome", "decision"]
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
    small = config.model_copy(update={"max_pending": 3})
    refused: list[str] = []
    async with SqliteAuditLog.open(small) as log:
        for i in range(6):
            log.append_behind("outcome", lambda i=i: {"i": i}, lambda e: refused.append(e.reason))
        await anyio.lowlevel.checkpoint()  # every entry has been built and deferred, or refused
        assert refused == ["the audit backlog is full (3 entries waiting for the disk)"] * 3
    with sqlite3.connect(config.path) as db:
        records = [r for (r,) in db.execute("SELECT record FROM entries ORDER BY seq")]
    assert records == ['{"i":0}', '{"i":1}', '{"i":2}']
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
