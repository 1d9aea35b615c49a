"""The write-ahead path of one call: no needless turn of the event loop, batching kept for
appends that arrive together, and entries in the same format as ever."""

from __future__ import annotations

import random
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import anyio
import anyio.lowlevel
import pytest

from mcp_guard.audit import AuditConfig, SqliteAuditLog, verify
from mcp_guard.audit.models import format_time

from .helpers import decision_record, public_key

pytestmark = pytest.mark.anyio


async def test_a_lone_write_ahead_append_commits_without_waiting_for_a_turn_of_the_event_loop(
    config: AuditConfig,
) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", decision_record(1))
        await anyio.lowlevel.checkpoint()  # a later turn: this append is alone again
        other_task_ran = anyio.Event()

        async def other_task() -> None:
            other_task_ran.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(other_task)
            receipt = await log.append("decision", decision_record(2))
            assert not other_task_ran.is_set()  # the append never gave the loop a turn
        assert receipt.seq == 2
    assert verify(config.path, public_key(config)).ok


async def test_appends_that_arrive_together_after_a_lone_one_still_share_transactions(
    config: AuditConfig,
) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", decision_record(0))
        await anyio.lowlevel.checkpoint()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(1, 41):
                    tg.start_soon(log.append, "decision", decision_record(i))
    with sqlite3.connect(config.path) as db:
        entries, transactions = db.execute("SELECT COUNT(*), COUNT(DISTINCT time) FROM entries").fetchone()
    assert entries == 41
    assert transactions < 20  # the burst went to the writer together, not one commit each
    assert verify(config.path, public_key(config)).ok


async def test_a_caller_appending_in_a_loop_still_lets_other_tasks_run(config: AuditConfig) -> None:
    appended = 0
    seen_by_other_task: list[int] = []

    async def append_in_a_loop() -> None:
        nonlocal appended
        for i in range(20):
            await log.append("decision", decision_record(i))
            appended += 1

    async def other_task() -> None:
        seen_by_other_task.append(appended)

    async with SqliteAuditLog.open(config) as log:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(append_in_a_loop)
                tg.start_soon(other_task)
    assert seen_by_other_task and seen_by_other_task[0] < 20  # it ran before the loop was done


async def test_a_write_ahead_append_of_a_cancelled_caller_writes_nothing(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        await log.append("decision", decision_record(1))
        await anyio.lowlevel.checkpoint()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await log.append("decision", decision_record(2))
        assert scope.cancelled_caught
    with sqlite3.connect(config.path) as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == (1,)


async def test_entry_ids_are_distinct_version_4_uuids_in_hex(config: AuditConfig) -> None:
    async with SqliteAuditLog.open(config) as log:
        receipts = [await log.append("decision", decision_record(i)) for i in range(50)]
    ids = [r.id for r in receipts]
    assert len(set(ids)) == 50
    for id_ in ids:
        parsed = uuid.UUID(hex=id_)
        assert (parsed.hex, parsed.version, parsed.variant) == (id_, 4, uuid.RFC_4122)
    with sqlite3.connect(config.path) as db:
        assert [r[0] for r in db.execute("SELECT id FROM entries ORDER BY seq")] == ids


def test_audit_times_print_in_utc_with_microseconds_from_any_time_zone() -> None:
    zones = [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-11)),
        timezone(timedelta(seconds=561)),
        ZoneInfo("UTC"),
        ZoneInfo("Europe/Paris"),
        ZoneInfo("America/St_Johns"),
    ]
    rng = random.Random(3339)
    for _ in range(5_000):
        year = rng.choice([rng.randint(2, 9998), rng.randint(2, 1100)])  # strftime leaves 999 unpadded
        start = datetime(year, 1, 1, tzinfo=rng.choice(zones))
        t = start + timedelta(seconds=rng.randint(0, 364 * 86400), microseconds=rng.randint(0, 999_999))
        assert format_time(t) == t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), t
    assert format_time(datetime(2025, 1, 1, 12, tzinfo=UTC)) == "2025-01-01T12:00:00.000000Z"
    with pytest.raises(ValueError, match="time-zone aware"):
        format_time(datetime(2025, 1, 1))
