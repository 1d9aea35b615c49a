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
from pydantic import ValidationError

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


class Recipients:
    """A notifier that records which requests it was asked to announce."""

    name = "ops"

    def __init__(self) -> None:
        self.announced: list[str] = []
        self.first = anyio.Event()

    async def send(self, request: ApprovalRequest, client: Any) -> None:
        self.announced.append(request.id)
        self.first.set()


async def hold_all(stage: ApprovalStage, calls: list[ToolCall], verdicts: dict[int, Verdict | None]) -> None:
    """Run every call through ``stage`` at once, each in its own task, recording its verdict by index."""

    async def run(i: int, call: ToolCall) -> None:
        verdicts[i] = await stage(call)

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(run, i, call)


async def until_held(calls: list[ToolCall]) -> None:
    while any(c.approval_id is None for c in calls):
        await anyio.wait_all_tasks_blocked()
    await anyio.wait_all_tasks_blocked()


async def test_identical_held_calls_wait_on_one_request_and_one_approval_forwards_only_one_of_them(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    recipients = Recipients()
    async with ApprovalService.open(config, audit, clock=clock, notifiers=[recipients]) as approvals:
        stage = ApprovalStage(approvals)
        calls = [await inspected({"key": AWS_KEY}, mode="hold") for _ in range(4)]
        verdicts: dict[int, Verdict | None] = {}
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(hold_all, stage, calls, verdicts)
                await until_held(calls)
                await recipients.first.wait()
                request_id = calls[0].approval_id
                assert request_id is not None and {c.approval_id for c in calls} == {request_id}
                assert [r.id for r in await approvals.list()] == [request_id]
                await approvals.decide(request_id, BOB, True, "rotate it once")
    assert recipients.announced == [request_id]
    assert audit.events() == ["created", "approved"]
    forwarded = [i for i, v in verdicts.items() if v is None]
    assert len(forwarded) == 1
    for i, verdict in verdicts.items():
        if i in forwarded:
            continue
        assert verdict is not None and verdict.decision is Decision.BLOCK
        assert request_id in verdict.reason and "another identical call" in verdict.reason
        assert "not forwarded" in verdict.reason


async def test_a_rejection_refuses_every_identical_held_call_and_other_arguments_get_their_own_request(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        stage = ApprovalStage(approvals)
        same = [await inspected({"key": AWS_KEY}, mode="hold") for _ in range(3)]
        other = await inspected({"key": AWS_KEY, "region": "eu-west-1"}, mode="hold")
        verdicts: dict[int, Verdict | None] = {}
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(hold_all, stage, [*same, other], verdicts)
                await until_held([*same, other])
                assert len({c.approval_id for c in same}) == 1
                assert other.approval_id != same[0].approval_id
                assert same[0].approval_id is not None and other.approval_id is not None
                await approvals.decide(same[0].approval_id, BOB, False, "not today")
                await approvals.decide(other.approval_id, BOB, False, "nor that")
    assert all(
        v is not None and v.decision is Decision.BLOCK and "not today" in v.reason
        for v in (verdicts[0], verdicts[1], verdicts[2])
    )
    assert audit.events().count("created") == 2


async def test_a_held_call_whose_client_goes_away_leaves_the_shared_request_to_the_identical_call_still_held(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        stage = ApprovalStage(approvals)
        leaving, staying = [await inspected({"key": AWS_KEY}, mode="hold") for _ in range(2)]
        verdicts: dict[int, Verdict | None] = {}
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                async with anyio.create_task_group() as first:
                    first.start_soon(stage, leaving)  # files the request
                    await until_held([leaving])
                    tg.start_soon(hold_all, stage, [staying], verdicts)  # joins it
                    await until_held([staying])
                    first.cancel_scope.cancel()  # the first client goes away
                request_id = leaving.approval_id
                assert request_id is not None and staying.approval_id == request_id
                still = await approvals.get(request_id)
                assert still is not None and still.state is ApprovalState.PENDING
                await approvals.decide(request_id, BOB, True, "ok")
    assert verdicts == {0: None}
    assert audit.events() == ["created", "approved"]


def test_the_pending_cap_must_be_a_positive_number(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="max_pending_per_principal"):
        make_config(tmp_path, max_pending_per_principal=0)
    assert make_config(tmp_path).max_pending_per_principal == 20


async def test_a_principal_with_as_many_pending_requests_as_the_cap_is_refused_without_filing_or_notifying(
    tmp_path: Path, clock: FakeClock, audit: RecordingAudit
) -> None:
    config = make_config(tmp_path, max_pending_per_principal=2)
    recipients = Recipients()
    async with ApprovalService.open(config, audit, clock=clock, notifiers=[recipients]) as approvals:
        stage = ApprovalStage(approvals)
        filed = []
        for n in range(2):
            call = await inspected({"key": AWS_KEY, "n": n})
            verdict = await stage(call)
            assert verdict is not None and verdict.decision is Decision.APPROVAL_REQUIRED
            filed.append(call.approval_id)
        over = await inspected({"key": AWS_KEY, "n": 2})
        verdict = await Chain([stage]).run(over)
        assert verdict.decision is Decision.BLOCK
        assert "2 approval requests pending" in verdict.reason
        assert "max_pending_per_principal" in verdict.reason and "nothing was filed" in verdict.reason
        assert verdict.rules == NEEDS_APPROVAL.rules and over.approval_id is None
        assert sorted(r.id for r in await approvals.list()) == sorted(filed)
        assert audit.events() == ["created", "created"]
        retry = await inspected({"key": AWS_KEY, "n": 0})  # a retry of a pending call files nothing
        retried = await stage(retry)
        assert retried is not None and retried.decision is Decision.APPROVAL_REQUIRED
        assert retry.approval_id == filed[0]
        assert filed[0] is not None
        await approvals.decide(filed[0], BOB, False, "no")  # decided: no longer pending
        again = await inspected({"key": AWS_KEY, "n": 2})
        allowed = await stage(again)
        assert allowed is not None and allowed.decision is Decision.APPROVAL_REQUIRED
        assert again.approval_id not in (None, *filed)
        with anyio.fail_after(5):
            while len(recipients.announced) < 3:
                await anyio.wait_all_tasks_blocked()
        assert sorted(recipients.announced) == sorted([*filed, again.approval_id])


async def test_parallel_held_calls_never_file_more_requests_than_the_cap(
    tmp_path: Path, clock: FakeClock, audit: RecordingAudit
) -> None:
    config = make_config(tmp_path, max_pending_per_principal=3)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        stage = ApprovalStage(approvals)
        calls = [await inspected({"key": AWS_KEY, "n": n}, mode="hold") for n in range(8)]
        verdicts: dict[int, Verdict | None] = {}
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(hold_all, stage, calls, verdicts)
                while len(verdicts) < 5:  # five are refused at once, three are held
                    await anyio.wait_all_tasks_blocked()
                held = [c.approval_id for c in calls if c.approval_id is not None]
                assert len(held) == 3
                for request_id in held:
                    assert request_id is not None
                    await approvals.decide(request_id, BOB, False, "no")
        refused = [v for v in verdicts.values() if v is not None and "max_pending_per_principal" in v.reason]
        assert len(refused) == 5 and all(v.decision is Decision.BLOCK for v in refused)
        assert audit.events().count("created") == 3
