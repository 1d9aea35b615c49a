"""synchronous: OVERLAPPED — an entry is written before append returns and on disk before durable returns."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import anyio
import pytest

from mcp_guard.audit import AuditConfig, AuditReceipt, AuditUnavailableError, SqliteAuditLog, verify

from .helpers import decision_record, public_key

pytestmark = pytest.mark.anyio


@pytest.fixture
def overlapped(config: AuditConfig) -> AuditConfig:
    return config.model_copy(update={"synchronous": "OVERLAPPED"})


async def test_an_appended_entry_is_readable_at_once_and_durable_after_its_fsync(
    overlapped: AuditConfig,
) -> None:
    receipts: list[AuditReceipt] = []

    async def one(i: int) -> None:
        receipt = await log.append("decision", decision_record(i))
        with closing(sqlite3.connect(overlapped.path)) as db:  # written: another connection sees it now
            assert db.execute("SELECT id FROM entries WHERE seq = ?", (receipt.seq,)).fetchone() == (
                receipt.id,
            )
        await log.durable(receipt)
        receipts.append(receipt)

    with anyio.fail_after(20):
        async with SqliteAuditLog.open(overlapped) as log, anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    assert sorted(r.seq for r in receipts) == list(range(1, 201))
    assert verify(overlapped.path, public_key(overlapped)).ok


async def test_durable_returns_at_once_when_append_already_waited_for_the_disk(config: AuditConfig) -> None:
    for synchronous in ("FULL", "NORMAL"):
        settings = config.model_copy(
            update={"synchronous": synchronous, "path": config.path.with_name(synchronous)}
        )
        async with SqliteAuditLog.open(settings) as log:
            receipt = await log.append("decision", decision_record(1))
            with anyio.fail_after(0.5):
                await log.durable(receipt)


async def test_a_wal_that_cannot_be_synced_fails_the_waiter_and_every_later_append(
    overlapped: AuditConfig,
) -> None:
    wal = overlapped.path.with_name(overlapped.path.name + "-wal")
    with anyio.fail_after(20):
        async with SqliteAuditLog.open(overlapped) as log:
            await log.durable(await log.append("decision", decision_record(1)))
            wal.rename(wal.with_name("moved-wal"))  # entries written from now on never reach the database
            receipt = await log.append("decision", decision_record(2))
            with pytest.raises(AuditUnavailableError, match="cannot fsync"):
                await log.durable(receipt)
            with pytest.raises(AuditUnavailableError, match="cannot fsync"):
                await log.append("decision", decision_record(3))
            failures: list[str] = []
            log.append_behind("outcome", lambda: {"after": "failure"}, lambda e: failures.append(e.reason))
            await anyio.lowlevel.checkpoint()
            assert len(failures) == 1 and "cannot fsync" in failures[0]
