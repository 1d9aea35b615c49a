"""Retention: pruning keeps the remaining chain verifiable and never cuts into the minimum retention."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from mcp_guard.audit import AuditConfig, RetentionError, SqliteAuditLog, verify

from .helpers import T0, StepClock, decision_record, public_key

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1)


async def test_pruning_keeps_the_chain_verifiable_from_the_anchor_checkpoint(config: AuditConfig) -> None:
    clock = StepClock(step=DAY)  # entry i is written on day i; checkpoints at seq 1, 11, 21
    async with SqliteAuditLog.open(config, clock=clock) as log:
        for i in range(25):
            await log.append("decision", decision_record(i))
        clock.now = T0 + 400 * DAY
        result = await log.prune(T0 + 15 * DAY)
        assert (result.anchor_seq, result.deleted, result.first_seq) == (11, 11, 12)
        assert (await log.append("decision", decision_record(99))).seq == 27  # 26 records the prune
    report = verify(config.path, public_key(config))
    assert report.ok, report.problem
    assert (report.first_seq, report.anchor_seq, report.last_seq) == (12, 11, 27)
    with sqlite3.connect(config.path) as db:
        kind, record = db.execute("SELECT kind, record FROM entries WHERE seq = 26").fetchone()
    assert kind == "retention" and '"anchor_seq":11' in record


async def test_pruning_inside_the_minimum_retention_is_refused(config: AuditConfig) -> None:
    clock = StepClock(step=DAY)
    async with SqliteAuditLog.open(config, clock=clock) as log:
        for i in range(5):
            await log.append("decision", decision_record(i))
        clock.now = T0 + 100 * DAY
        with pytest.raises(RetentionError, match="minimum retention is 183 days"):
            await log.prune(T0 + 50 * DAY)
    assert verify(config.path, public_key(config)).entries == 5


async def test_after_pruning_deleting_more_from_the_start_is_still_detected(config: AuditConfig) -> None:
    clock = StepClock(step=DAY)
    async with SqliteAuditLog.open(config, clock=clock) as log:
        for i in range(25):
            await log.append("decision", decision_record(i))
        clock.now = T0 + 400 * DAY
        await log.prune(T0 + 15 * DAY)
    with sqlite3.connect(config.path) as db:
        db.execute("DELETE FROM entries WHERE seq <= 21")  # 21 is also a signed checkpoint
    problem = verify(config.path, public_key(config)).problem
    assert problem is not None and problem.code == "head_removed"
    assert "says the log starts at seq 12" in problem.message


async def test_a_log_that_fails_verification_is_not_pruned(config: AuditConfig) -> None:
    clock = StepClock(step=DAY)
    async with SqliteAuditLog.open(config, clock=clock) as log:
        for i in range(25):
            await log.append("decision", decision_record(i))
        with sqlite3.connect(config.path) as db:
            db.execute("UPDATE entries SET record = '{}' WHERE seq = 3")
        clock.now = T0 + 400 * DAY
        with pytest.raises(RetentionError, match="fails verification: seq 3: entry modified"):
            await log.prune(T0 + 15 * DAY)
