"""The pipeline's ApprovalStage over a real approvals service: what it stores and sends, when it forwards."""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_guard.approvals import (
    ApprovalConfig,
    ApprovalContext,
    ApprovalRequest,
    ApprovalService,
    ApprovalState,
    sign_decision,
)
from mcp_guard.decision import Decision, Verdict
from mcp_guard.inspection import Inspector
from mcp_guard.inspection.config import InspectionConfig
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.chain import Chain
from mcp_guard.pipeline.governance import ApprovalStage, InspectStage
from mcp_guard.policy import ApprovalSpec, PolicyResult
from tests.approvals.helpers import (
    ALICE,
    APPROVERS,
    BOB,
    FakeClock,
    RecordingAudit,
    make_config,
    write_locked,
)

pytestmark = pytest.mark.anyio

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
NEEDS_APPROVAL = Verdict(decision=Decision.APPROVAL_REQUIRED, rules=("needs-approval",), reason="risky")


def tool_call(arguments: dict[str, Any], mode: str = "defer") -> ToolCall:
    spec = ApprovalSpec(mode=mode, approvers=APPROVERS)  # type: ignore[arg-type]
    return ToolCall(
        principal=ALICE,
        session_id="s-1",
        tool="cloud__rotate_key",
        arguments=arguments,
        received_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        policy=PolicyResult(verdict=NEEDS_APPROVAL, approval=spec),
        verdict=NEEDS_APPROVAL,
    )


async def inspected(arguments: dict[str, Any], mode: str = "defer") -> ToolCall:
    call = tool_call(arguments, mode)
    await InspectStage(Inspector(InspectionConfig()))(call)
    assert call.findings, "the inspector should have found the AWS key"
    return call


async def test_a_secret_in_the_arguments_never_reaches_the_approvals_database_or_approvers(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        call = await inspected({"user": "svc-deploy", "key": AWS_KEY})
        await ApprovalStage(approvals)(call)
        assert call.approval_id is not None
        stored = await approvals.get(call.approval_id)
        assert stored is not None
        assert AWS_KEY not in stored.model_dump_json()
        assert stored.context.arguments["user"] == "svc-deploy"
        assert stored.context.arguments["key"].startswith("[REDACTED:")
    assert AWS_KEY.encode() not in config.path.read_bytes()


async def test_full_argument_policy_shows_approvers_the_arguments_as_sent(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        call = await inspected({"key": AWS_KEY})
        await ApprovalStage(approvals, arguments="full")(call)
        assert call.approval_id is not None
        stored = await approvals.get(call.approval_id)
        assert stored is not None and stored.context.arguments == {"key": AWS_KEY}


async def test_digest_argument_policy_stores_no_arguments_for_approvers(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        call = await inspected({"user": "svc-deploy", "key": AWS_KEY})
        await ApprovalStage(approvals, arguments="digest")(call)
        assert call.approval_id is not None
        stored = await approvals.get(call.approval_id)
        assert stored is not None and stored.context.arguments == {}


async def test_a_redacted_approval_still_releases_exactly_the_original_call(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        stage = ApprovalStage(approvals)
        first = await inspected({"key": AWS_KEY})
        refused = await stage(first)
        assert refused is not None and refused.decision is Decision.APPROVAL_REQUIRED
        assert first.approval_id is not None
        await approvals.decide(first.approval_id, BOB, True, "ok")
        retried = await inspected({"key": AWS_KEY})
        assert await stage(retried) is None
        assert retried.approval_id == first.approval_id
        used = await approvals.get(first.approval_id)
        assert used is not None and used.state is ApprovalState.USED


def forge_approval(config: ApprovalConfig, request_id: str, valid_until: str | None) -> None:
    """Write an approval into the database as someone with the file but not the signing key would."""
    with sqlite3.connect(config.path) as db:
        (context,) = db.execute("SELECT context FROM requests WHERE id = ?", (request_id,)).fetchone()
        request = ApprovalRequest(
            id=request_id,
            state=ApprovalState.PENDING,
            created_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
            expires_at=datetime(2026, 3, 1, 9, 15, tzinfo=UTC),
            context=ApprovalContext.model_validate_json(context),
        )
        forged = sign_decision(
            Ed25519PrivateKey.generate(),
            request,
            BOB,
            approve=True,
            reason="forged",
            decided_at=datetime(2026, 3, 1, 9, 1, tzinfo=UTC),
            via="api",
        )
        db.execute(
            "UPDATE requests SET state = 'approved', decision = ?, valid_until = ? WHERE id = ?",
            (forged.model_dump_json(), valid_until, request_id),
        )


async def test_a_held_call_is_not_forwarded_on_an_approval_the_gateway_did_not_sign(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        call = await inspected({"key": AWS_KEY}, mode="hold")
        stage = ApprovalStage(approvals)
        verdict: Verdict | None = None

        async def hold() -> None:
            nonlocal verdict
            verdict = await stage(call)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(hold)
                while call.approval_id is None:
                    await anyio.wait_all_tasks_blocked()
                forge_approval(config, call.approval_id, None)
        assert verdict is not None and verdict.decision is Decision.BLOCK
        assert "does not verify" in verdict.reason


async def test_a_deferred_call_is_not_released_by_an_approval_the_gateway_did_not_sign(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        stage = ApprovalStage(approvals)
        first = await inspected({"key": AWS_KEY})
        await stage(first)
        assert first.approval_id is not None
        forge_approval(config, first.approval_id, "2026-03-01T09:30:00.000000Z")
        retried = await inspected({"key": AWS_KEY})
        verdict = await stage(retried)
        assert verdict is not None and verdict.decision is Decision.APPROVAL_REQUIRED
        assert retried.approval_id != first.approval_id


async def test_retrying_a_deferred_call_before_it_is_decided_reuses_its_pending_request(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        stage = ApprovalStage(approvals)
        ids = []
        for _ in range(3):
            call = await inspected({"key": AWS_KEY})
            verdict = await stage(call)
            assert verdict is not None and verdict.decision is Decision.APPROVAL_REQUIRED
            ids.append(call.approval_id)
        assert len(set(ids)) == 1 and ids[0] is not None
        assert [r.id for r in await approvals.list()] == [ids[0]]
        assert audit.events() == ["created"]
        other = await inspected({"key": AWS_KEY, "region": "eu-west-1"})
        await stage(other)
        assert other.approval_id not in (None, ids[0])  # other arguments: another request
        clock.advance(3600)  # once the first has expired, a retry asks again
        late = await inspected({"key": AWS_KEY})
        await stage(late)
        assert late.approval_id not in (None, ids[0])


async def test_a_held_call_whose_approvals_database_fails_is_blocked_with_a_clear_reason(
    tmp_path: Path, clock: FakeClock, audit: RecordingAudit
) -> None:
    config = make_config(tmp_path, busy_timeout_ms=50)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        call = await inspected({"key": AWS_KEY}, mode="hold")
        with ExitStack() as another_writer:
            locked = False

            async def progress(waited: float, total: float | None, message: str | None) -> None:
                nonlocal locked
                if not locked:  # while the call is held, another writer locks the file
                    another_writer.enter_context(write_locked(config.path))
                    locked = True

            call.report_progress = progress
            with anyio.fail_after(5):
                verdict = await Chain([ApprovalStage(approvals, hold_timeout_s=0.2)]).run(call)
        assert verdict.decision is Decision.BLOCK
        assert call.approval_id is not None and call.approval_id in verdict.reason
        assert "database is locked" in verdict.reason and "not forwarded" in verdict.reason
        final = await approvals.get(call.approval_id)
        assert final is not None and final.state is ApprovalState.ABANDONED
    assert audit.events(call.approval_id) == ["created", "abandoned"]
