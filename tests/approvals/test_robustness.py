"""Approvals when the approvals database or the audit log fails: every request ends in a definite,
audited state, nothing changes state without its audit record, and finished holds leave nothing behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from mcp_guard.approvals import (
    ApprovalConfig,
    ApprovalHoldFailedError,
    ApprovalNotPendingError,
    ApprovalService,
    ApprovalState,
)
from mcp_guard.approvals.decide import record_decision
from mcp_guard.approvals.store import ApprovalStore
from mcp_guard.audit.models import AuditUnavailableError
from mcp_guard.signing import load_signing_key
from tests.approvals.helpers import (
    ALICE,
    BOB,
    FakeClock,
    RecordingAudit,
    UnavailableAudit,
    cancel_while_holding,
    make_config,
    make_context,
    write_locked,
)
from tests.harness import FailingCommitOnce

pytestmark = pytest.mark.anyio


async def stored(path: Path, request_id: str) -> ApprovalState | None:
    """The request's state as another reader of the file sees it (``None``: not stored)."""
    async with ApprovalStore.open(path, create=False) as store:
        request = await store.get(request_id)
    return None if request is None else request.state


async def test_a_hold_whose_database_fails_ends_abandoned_and_audited_not_pending(
    tmp_path: Path, clock: FakeClock, audit: RecordingAudit
) -> None:
    config = make_config(tmp_path, busy_timeout_ms=50)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context())
        with write_locked(config.path), anyio.fail_after(5), pytest.raises(ApprovalHoldFailedError) as info:
            await approvals.wait(req.id, timeout_s=0.05)  # expiring it at the timeout meets the lock
        assert info.value.status == 503
        assert req.id in str(info.value) and "database is locked" in str(info.value)
        assert "not forwarded" in str(info.value)
        with pytest.raises(ApprovalNotPendingError):  # nobody can approve a call that was refused
            await approvals.decide(req.id, BOB, True, "looks fine")
        final = await approvals.get(req.id)
        assert final is not None and final.state is ApprovalState.ABANDONED
        assert final.state_reason is not None and "database is locked" in final.state_reason
        assert approvals.holding == 0
    assert audit.events(req.id) == ["created", "abandoned"]


async def test_a_failed_hold_that_cannot_be_audited_is_abandoned_by_the_sweep_once_the_log_is_back(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    audit = UnavailableAudit(working=1)  # the creation is audited, then the log fails
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context())
        with anyio.fail_after(5), pytest.raises(ApprovalHoldFailedError, match="disk full"):
            await approvals.wait(req.id, timeout_s=0.05)
        assert await stored(config.path, req.id) is ApprovalState.PENDING  # nothing changed unaudited
        with pytest.raises(AuditUnavailableError):  # and no decision is accepted meanwhile
            await approvals.decide(req.id, BOB, True, "looks fine")
        audit.working = 10
        assert await approvals.sweep() == []
        assert await stored(config.path, req.id) is ApprovalState.ABANDONED
        with pytest.raises(ApprovalNotPendingError):
            await approvals.decide(req.id, BOB, True, "looks fine")
    assert audit.events(req.id) == ["created", "abandoned"]


async def test_a_cancelled_hold_whose_abandonment_cannot_be_audited_stays_pending_until_it_can(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    audit = UnavailableAudit(working=1)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context())
        await cancel_while_holding(approvals, req.id)  # the cancellation is not replaced
        assert await stored(config.path, req.id) is ApprovalState.PENDING
        audit.working = 10
        await approvals.sweep()
        assert await stored(config.path, req.id) is ApprovalState.ABANDONED
    assert audit.events(req.id) == ["created", "abandoned"]


async def test_an_expiry_the_audit_log_cannot_record_does_not_take_effect(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    audit = UnavailableAudit(working=1)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context(mode="defer", ttl_s=60))
        clock.advance(61)
        with pytest.raises(AuditUnavailableError):
            await approvals.sweep()
        assert await stored(config.path, req.id) is ApprovalState.PENDING
        audit.working = 10
        assert [r.id for r in await approvals.sweep()] == [req.id]
        assert await stored(config.path, req.id) is ApprovalState.EXPIRED
    assert audit.events(req.id) == ["created", "expired"]


async def test_a_request_whose_creation_cannot_be_audited_is_not_stored(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    audit = UnavailableAudit(working=0)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        with pytest.raises(AuditUnavailableError):
            await approvals.create(make_context(mode="defer"))
        assert await approvals.list() == []


async def test_a_use_the_audit_log_cannot_record_leaves_the_approval_usable(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    audit = UnavailableAudit(working=2)  # created and approved, then the log fails
    ctx = make_context(mode="defer")
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(ctx)
        await approvals.decide(req.id, BOB, True, "ok once")
        with pytest.raises(AuditUnavailableError):
            await approvals.consume(ALICE, ctx.tool, ctx.call_digest)
        assert await stored(config.path, req.id) is ApprovalState.APPROVED
        audit.working = 10
        assert await approvals.consume(ALICE, ctx.tool, ctx.call_digest) == req.id
    assert audit.events(req.id) == ["created", "approved", "used"]


async def test_holds_decided_in_another_process_leave_no_wakeup_entries_behind(
    tmp_path: Path, clock: FakeClock
) -> None:
    n = 50
    config = make_config(
        tmp_path, poll_interval_s=0.02, progress_interval_s=0.02, max_pending_per_principal=n
    )
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        ids = [(await approvals.create(make_context(arguments={"n": i}))).id for i in range(n)]
        holding: set[str] = set()
        all_holding = anyio.Event()

        async def hold(request_id: str) -> None:
            async def on_tick(waited: float) -> None:
                holding.add(request_id)
                if len(holding) == n:
                    all_holding.set()

            outcome = await approvals.wait(request_id, 300, on_tick)
            assert outcome.state is ApprovalState.APPROVED

        key = load_signing_key(config.signing_key_path)
        with anyio.fail_after(10):
            async with ApprovalStore.open(config.path) as cli, anyio.create_task_group() as tg:
                for request_id in ids:
                    tg.start_soon(hold, request_id)
                await all_holding.wait()
                assert approvals.holding == n
                for request_id in ids:  # the CLI's path: its own connection to the file
                    await record_decision(
                        cli,
                        key,
                        None,
                        request_id=request_id,
                        approver=BOB,
                        approve=True,
                        reason="",
                        now=clock(),
                        via="cli",
                        default_approvers=config.default_approvers,
                    )
        assert approvals.holding == 0


async def test_a_request_whose_commit_fails_is_not_stored_and_the_next_one_is(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        store = approvals._store
        store._conn = FailingCommitOnce(store._conn)  # type: ignore[assignment]
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            await approvals.create(make_context(mode="defer"))
        kept = await approvals.create(make_context(mode="defer", tool="github__archive_repo"))
        assert [r.id for r in await approvals.list()] == [kept.id]
