"""The approval service as the gateway pipeline drives it: hold, defer, expiry, restarts, authorisation."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from mcp_guard.approvals import (
    ApprovalConfig,
    ApprovalExpiredError,
    ApprovalHoldFailedError,
    ApprovalNotFoundError,
    ApprovalNotPendingError,
    ApprovalService,
    ApprovalState,
    NotAnApproverError,
    SelfApprovalError,
    TooManyPendingError,
    call_digest,
)
from mcp_guard.approvals import service as service_module
from mcp_guard.approvals.authz import can_view
from mcp_guard.audit.models import AuditUnavailableError
from mcp_guard.principal import Principal
from tests.approvals.helpers import (
    ALICE,
    BOB,
    CAROL,
    FakeClock,
    RecordingAudit,
    UnavailableAudit,
    cancel_while_holding,
    make_config,
    make_context,
)

pytestmark = pytest.mark.anyio


async def test_a_new_request_is_pending_with_its_ttl_and_is_audited(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context(ttl_s=120))
        assert req.state is ApprovalState.PENDING
        assert (req.expires_at - req.created_at).total_seconds() == 120
        assert await approvals.get(req.id) == req
        assert [r.id for r in await approvals.list(ApprovalState.PENDING)] == [req.id]
    assert audit.events(req.id) == ["created"]


async def test_other_principals_newer_requests_do_not_push_a_callers_own_out_of_its_list(
    config: ApprovalConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "LIST_PAGE", 3)
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        mine = await approvals.create(make_context(CAROL))
        for i in range(10):
            clock.advance(1)
            await approvals.create(make_context(ALICE, arguments={"n": i}))
        carols = await approvals.list(visible=lambda r: r.principal.user == "carol", limit=5)
        newest_two = await approvals.list(limit=2)
    assert [r.id for r in carols] == [mine.id]
    assert len(newest_two) == 2 and all(r.principal.user == "alice" for r in newest_two)


async def test_wait_returns_the_approved_request_once_an_approver_decides(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context())
        outcome = None

        async def waiter() -> None:
            nonlocal outcome
            outcome = await approvals.wait(req.id, timeout_s=30)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                await approvals.decide(req.id, BOB, True, "looks fine")
        assert outcome is not None
        assert outcome.state is ApprovalState.APPROVED
        assert outcome.decision is not None
        assert (outcome.decision.approver_user, outcome.decision.reason) == ("bob", "looks fine")
        assert approvals.verify(outcome)
    assert audit.events(req.id) == ["created", "approved"]


async def test_a_rejection_carries_its_reason_into_the_request_and_the_audit_log(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context())
        rejected = await approvals.decide(req.id, BOB, False, "not during the freeze")
        assert rejected.state is ApprovalState.REJECTED
        assert rejected.decision is not None and rejected.decision.reason == "not during the freeze"
        with anyio.fail_after(5):
            assert (await approvals.wait(req.id, timeout_s=30)).state is ApprovalState.REJECTED
        with pytest.raises(ApprovalNotPendingError):
            await approvals.decide(req.id, BOB, True, "changed my mind")
    _, record = audit.entries[-1]
    assert record["event"] == "rejected"
    assert record["reason"] == "not during the freeze"
    assert '"reason":"not during the freeze"' in record["signed_payload"]
    assert record["signature"] and record["key_id"] == approvals.key_id


async def test_a_pending_request_expires_when_its_ttl_passes(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context(ttl_s=60))
        clock.advance(59)
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]
        clock.advance(1)
        with pytest.raises(ApprovalExpiredError):
            await approvals.decide(req.id, BOB, True, "too late")
        expired = await approvals.get(req.id)
        assert expired is not None and expired.state is ApprovalState.EXPIRED
    assert audit.events(req.id) == ["created", "expired"]


async def test_the_sweeper_expiry_wakes_a_holding_waiter(config: ApprovalConfig, clock: FakeClock) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(ttl_s=60))
        outcome = None

        async def waiter() -> None:
            nonlocal outcome
            outcome = await approvals.wait(req.id, timeout_s=300)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                clock.advance(61)
                assert [r.id for r in await approvals.sweep()] == [req.id]
        assert outcome is not None and outcome.state is ApprovalState.EXPIRED


async def test_expiry_is_enforced_across_a_restart(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context(mode="defer", ttl_s=60))
    clock.advance(3600)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        reopened = await approvals.get(req.id)
        assert reopened is not None and reopened.state is ApprovalState.EXPIRED
        assert reopened.state_reason == "time to live ran out"
    assert audit.events(req.id) == ["created", "expired"]


async def test_a_deferred_approval_lets_exactly_one_identical_call_through(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    args = {"owner": "acme", "repo": "payments-api"}
    digest = call_digest(ALICE, "github__delete_repo", args)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        assert await approvals.consume(ALICE, "github__delete_repo", digest) is None
        req = await approvals.create(make_context(arguments=args, mode="defer"))
        assert await approvals.consume(ALICE, "github__delete_repo", digest) is None  # still pending
        approved = await approvals.decide(req.id, BOB, True, "ok once")
        assert approved.valid_until is not None
        other = call_digest(ALICE, "github__delete_repo", {"owner": "acme", "repo": "other"})
        assert await approvals.consume(ALICE, "github__delete_repo", other) is None
        assert await approvals.consume(CAROL, "github__delete_repo", digest) is None
        assert await approvals.consume(ALICE, "github__delete_repo", digest) == req.id
        assert await approvals.consume(ALICE, "github__delete_repo", digest) is None
        used = await approvals.get(req.id)
        assert used is not None and used.state is ApprovalState.USED
    assert audit.events(req.id) == ["created", "approved", "used"]


async def test_an_approval_for_one_principal_does_not_release_a_principal_whose_key_once_collided(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    victim = Principal(user="kim|x", teams=frozenset({"finance"}))
    impostor = Principal(user="kim", agent="x|")
    args = {"owner": "acme", "repo": "payments-api"}
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(victim, arguments=args, mode="defer"))
        await approvals.decide(req.id, BOB, True, "ok once")
        impostor_digest = call_digest(impostor, "github__delete_repo", args)
        assert await approvals.consume(impostor, "github__delete_repo", impostor_digest) is None
        victim_digest = call_digest(victim, "github__delete_repo", args)
        assert await approvals.consume(victim, "github__delete_repo", victim_digest) == req.id


async def test_an_approval_for_a_user_of_one_tenant_does_not_release_the_same_name_in_another(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    acme_kim = Principal(user="kim", agent="bot", tenant="acme")
    globex_kim = Principal(user="kim", agent="bot", tenant="globex")
    args = {"owner": "acme", "repo": "payments-api"}
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(acme_kim, arguments=args, mode="defer"))
        await approvals.decide(req.id, BOB, True, "ok once")
        assert not can_view(req, globex_kim, config.default_approvers, config.admin_roles)
        assert can_view(req, acme_kim, config.default_approvers, config.admin_roles)
        globex_digest = call_digest(globex_kim, "github__delete_repo", args)
        assert await approvals.consume(globex_kim, "github__delete_repo", globex_digest) is None
        acme_digest = call_digest(acme_kim, "github__delete_repo", args)
        assert await approvals.consume(acme_kim, "github__delete_repo", acme_digest) == req.id


async def test_consuming_many_times_at_once_succeeds_exactly_once(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    ctx = make_context(mode="defer")
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(ctx)
        await approvals.decide(req.id, BOB, True, "")
        results: list[str | None] = []

        async def one() -> None:
            results.append(await approvals.consume(ALICE, ctx.tool, ctx.call_digest))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
    assert results.count(req.id) == 1
    assert results.count(None) == 9


async def test_an_unused_deferred_approval_expires_after_valid_for(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    ctx = make_context(mode="defer", valid_for_s=30)
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(ctx)
        await approvals.decide(req.id, BOB, True, "")
        clock.advance(31)
        assert await approvals.consume(ALICE, ctx.tool, ctx.call_digest) is None
        assert (await approvals.get(req.id)).state is ApprovalState.EXPIRED  # type: ignore[union-attr]


async def test_the_requester_cannot_approve_its_own_request(config: ApprovalConfig, clock: FakeClock) -> None:
    sre_alice = ALICE.model_copy(update={"roles": frozenset({"sre"})})
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(principal=sre_alice))
        with pytest.raises(SelfApprovalError) as info:
            await approvals.decide(req.id, sre_alice, True, "trust me")
        assert info.value.status == 403
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


async def test_self_approval_is_allowed_when_the_rule_says_allow_self(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    sre_alice = ALICE.model_copy(update={"roles": frozenset({"sre"})})
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(principal=sre_alice, allow_self=True))
        decided = await approvals.decide(req.id, sre_alice, True, "my own call, reviewed")
        assert decided.state is ApprovalState.APPROVED


async def test_someone_who_is_not_an_approver_is_refused(config: ApprovalConfig, clock: FakeClock) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context())
        with pytest.raises(NotAnApproverError):
            await approvals.decide(req.id, CAROL, True, "")
        erin = CAROL.model_copy(update={"user": "erin"})  # listed by user name
        assert (await approvals.decide(req.id, erin, True, "")).state is ApprovalState.APPROVED
        with pytest.raises(ApprovalNotFoundError):
            await approvals.decide("nope", BOB, True, "")


async def test_an_approver_of_another_tenant_is_refused(config: ApprovalConfig, clock: FakeClock) -> None:
    tenant_alice = ALICE.model_copy(update={"tenant": "acme"})
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(principal=tenant_alice))
        with pytest.raises(NotAnApproverError):
            await approvals.decide(req.id, BOB.model_copy(update={"tenant": "globex"}), True, "")
        decided = await approvals.decide(req.id, BOB.model_copy(update={"tenant": "acme"}), True, "")
        assert decided.state is ApprovalState.APPROVED


async def test_default_approvers_apply_when_the_rule_names_none(tmp_path: Path, clock: FakeClock) -> None:
    config = make_config(tmp_path, default_approvers={"teams": ["secops"]})
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(approvers={}))
        with pytest.raises(NotAnApproverError):
            await approvals.decide(req.id, BOB, True, "")
        secops = CAROL.model_copy(update={"teams": frozenset({"secops"})})
        assert (await approvals.decide(req.id, secops, True, "")).state is ApprovalState.APPROVED


async def test_a_deferred_request_survives_a_restart_and_can_be_approved_and_used_after_it(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    ctx = make_context(mode="defer")
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(ctx)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]
        await approvals.decide(req.id, BOB, True, "after the restart")
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        assert await approvals.consume(ALICE, ctx.tool, ctx.call_digest) == req.id
    assert audit.events(req.id) == ["created", "approved", "used"]


async def test_a_held_request_left_pending_by_a_previous_process_is_abandoned(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context(mode="hold"))
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        reopened = await approvals.get(req.id)
        assert reopened is not None and reopened.state is ApprovalState.ABANDONED
    assert audit.events(req.id) == ["created", "abandoned"]


async def test_a_request_is_abandoned_when_its_waiter_is_cancelled(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context())
        await cancel_while_holding(approvals, req.id)
        gone = await approvals.get(req.id)
        assert gone is not None and gone.state is ApprovalState.ABANDONED
        with pytest.raises(ApprovalNotPendingError):
            await approvals.decide(req.id, BOB, True, "")
    assert audit.events(req.id) == ["created", "abandoned"]


async def test_a_hold_that_times_out_expires_the_request(config: ApprovalConfig, clock: FakeClock) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context())
        with anyio.fail_after(5):
            outcome = await approvals.wait(req.id, timeout_s=0.05)
        assert outcome.state is ApprovalState.EXPIRED
        assert outcome.state_reason is not None and "hold timeout" in outcome.state_reason


async def test_self_confirmation_needs_allow_self_and_the_requester(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        strict = await approvals.create(make_context())
        with pytest.raises(SelfApprovalError):
            await approvals.self_confirm(strict.id, ALICE, accepted=True)
        lenient = await approvals.create(make_context(allow_self=True))
        with pytest.raises(NotAnApproverError):
            await approvals.self_confirm(lenient.id, CAROL, accepted=True)
        confirmed = await approvals.self_confirm(lenient.id, ALICE, accepted=True)
        assert confirmed.state is ApprovalState.APPROVED
        assert confirmed.decision is not None and confirmed.decision.via == "elicitation"
        assert approvals.verify(confirmed)


async def test_a_decision_that_cannot_be_audited_does_not_take_effect(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    audit = UnavailableAudit(working=1)  # the creation is audited, then the log fails
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context(mode="defer"))
        with pytest.raises(AuditUnavailableError):
            await approvals.decide(req.id, BOB, True, "looks fine")
        still = await approvals.get(req.id)
        assert still is not None and still.state is ApprovalState.PENDING and still.decision is None
        assert await approvals.consume(ALICE, req.tool, req.call_digest) is None
        audit.working = 10  # the audit log is back: the same approver decides again
        decided = await approvals.decide(req.id, BOB, True, "looks fine")
        assert decided.state is ApprovalState.APPROVED and approvals.verify(decided)
    assert audit.events(req.id) == ["created", "approved"]


async def test_the_requester_cannot_approve_its_own_request_through_another_agent(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    kim = Principal(user="kim", agent="claude-desktop", roles=frozenset({"sre"}), tenant="acme")
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(principal=kim))
        for approver in (
            kim,
            kim.model_copy(update={"agent": "cursor"}),
            kim.model_copy(update={"agent": None}),
        ):
            with pytest.raises(SelfApprovalError):
                await approvals.decide(req.id, approver, True, "it is me, via another agent")


async def test_an_approver_without_a_tenant_named_like_the_requester_is_refused_as_the_requester(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    acme_kim = Principal(user="kim", agent="bot", tenant="acme")
    untenanted_sre_kim = Principal(user="kim", roles=frozenset({"sre"}))  # a Slack or CLI approver
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        tenants_request = await approvals.create(make_context(principal=acme_kim))
        with pytest.raises(SelfApprovalError):
            await approvals.decide(tenants_request.id, untenanted_sre_kim, True, "")
        untenanted_request = await approvals.create(make_context(principal=Principal(user="kim")))
        with pytest.raises(SelfApprovalError):
            await approvals.decide(
                untenanted_request.id, acme_kim.model_copy(update={"roles": frozenset({"sre"})}), True, ""
            )


async def test_the_same_user_name_in_another_tenant_is_another_person_refused_only_as_a_foreign_approver(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    acme_kim = Principal(user="kim", agent="bot", tenant="acme")
    globex_sre_kim = Principal(user="kim", roles=frozenset({"sre"}), tenant="globex")
    assert not globex_sre_kim.same_identity(acme_kim)
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context(principal=acme_kim))
        with pytest.raises(NotAnApproverError):
            await approvals.decide(req.id, globex_sre_kim, True, "")
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


async def test_a_principal_cannot_file_past_the_pending_cap_but_others_and_expired_ones_do_not_count(
    tmp_path: Path, clock: FakeClock, audit: RecordingAudit
) -> None:
    config = make_config(tmp_path, max_pending_per_principal=2)
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        await approvals.create(make_context(arguments={"n": 1}))
        await approvals.create(make_context(arguments={"n": 2}))
        with pytest.raises(TooManyPendingError, match="max_pending_per_principal = 2") as refused:
            await approvals.create(make_context(arguments={"n": 3}))
        assert refused.value.limit == 2 and refused.value.principal_key == ALICE.key
        await approvals.create(make_context(CAROL, arguments={"n": 3}))  # another principal
        assert len(await approvals.list(ApprovalState.PENDING)) == 3
        assert audit.events() == ["created"] * 3
        clock.advance(3600)  # Alice's two expire (not yet swept): they no longer count
        await approvals.create(make_context(arguments={"n": 3}))


async def test_a_call_joining_an_identical_held_call_times_out_with_it_and_a_failing_joiner_abandons_nothing(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        outcomes: list[str] = []

        async def failing_tick(waited: float) -> None:
            raise OSError("the client's stream is closed")

        async with approvals.hold(make_context(), timeout_s=0.3) as filer:
            async with approvals.hold(make_context(), timeout_s=3600) as joiner:
                assert joiner.request_id == filer.request_id and not joiner.filed
                with pytest.raises(ApprovalHoldFailedError, match="stays pending"):
                    await approvals.wait_held(joiner, on_tick=failing_tick)
                still = await approvals.get(filer.request_id)
                assert still is not None and still.state is ApprovalState.PENDING
            async with approvals.hold(make_context(), timeout_s=3600) as late:
                assert late.request_id == filer.request_id
                with anyio.fail_after(5):  # the filer's 0.3 s, not the late call's hour
                    outcome = await approvals.wait_held(late)
                outcomes.append(outcome.state.value)
        assert outcomes == ["expired"]
        assert audit.events() == ["created", "expired"]
        async with approvals.hold(make_context(), timeout_s=1) as after:  # expired: a new request
            assert after.filed and after.request_id != filer.request_id
