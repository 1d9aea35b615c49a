"""The decision stages that look inside a call: inspect, score, limits, approval."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mcp_guard.approvals import (
    ApprovalContext,
    ApprovalRequest,
    ApprovalService,
    ApprovalState,
    HeldCall,
    TooManyPendingError,
    call_digest,
)
from mcp_guard.approvals.models import ApprovalSpec as ApprovalRequestSpec
from mcp_guard.controls import Admission, ControlCall, Controls
from mcp_guard.decision import Decision, Verdict
from mcp_guard.inspection import Inspector
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.recording import ArgumentPolicy, arguments_as_recorded
from mcp_guard.policy import ApprovalSpec
from mcp_guard.risk import RiskInput, RiskScorer
from mcp_guard.sessions import argument_shape

logger = logging.getLogger(__name__)


class InspectStage:
    """Detectors over the arguments: PII, secrets, injection, attacks, evasion."""

    name = "inspect"

    def __init__(self, inspector: Inspector) -> None:
        self.inspector = inspector

    async def __call__(self, call: ToolCall) -> Verdict | None:
        call.findings = await self.inspector.scan_sized(call.arguments, "$.arguments", call.argument_bytes)
        return None


class ScoreStage:
    """The 7-factor risk score, with its breakdown, for the policy to use."""

    name = "score"

    def __init__(self, scorer: RiskScorer) -> None:
        self.scorer = scorer

    async def __call__(self, call: ToolCall) -> Verdict | None:
        assert call.route is not None and call.info is not None
        call.shape = argument_shape(call.arguments)
        assessment = self.scorer.score(
            RiskInput(
                principal=call.principal,
                tool=call.tool,
                upstream=call.route.upstream,
                actions=call.actions,
                environment=call.info.environment,
                arguments=call.arguments,
                findings=call.findings,
                session=call.session,
                now=call.received_at,
                workflow=call.workflow,
                principal_session=call.principal_session,
                shape=call.shape,
            )
        )
        call.risk = assessment.score
        call.risk_factors = assessment.factor_scores()
        call.risk_assessment = assessment  # its breakdown is built only for an approval request
        return None


def control_call(call: ToolCall) -> ControlCall:
    assert call.route is not None
    return ControlCall(
        principal=call.principal, tool=call.tool, upstream=call.route.upstream, arguments=call.arguments
    )


class LimitsStage:
    """Rate limits, budgets and circuit breakers, for calls the policy lets through.

    A call over a rate limit or budget whose decision is APPROVAL_REQUIRED goes on to
    the approval stage, which asks a human as the control's ``approval:`` block says.
    """

    name = "limits"

    def __init__(self, controls: Controls) -> None:
        self.controls = controls

    async def __call__(self, call: ToolCall) -> Verdict | None:
        if call.verdict.decision is Decision.BLOCK:
            return call.verdict
        request = control_call(call)
        call.admission = await self.controls.admit(request)
        refused = call.admission.verdict
        if refused is None:
            return None
        if refused.decision is Decision.APPROVAL_REQUIRED:
            call.verdict = needing_approval(call.verdict, refused)
            return None
        if refused.decision.forwards:  # a WARN / MONITOR_ONLY limit: note it, keep the more severe
            if refused.decision.severity > call.verdict.decision.severity:
                call.verdict = refused
            return None
        return refused


def needing_approval(decided: Verdict, over: Verdict) -> Verdict:
    """The verdict of a call the policy ``decided`` and that is ``over`` controls asking a human.

    One approval covers both when the policy asks too: its rules and reason come first.
    """
    if decided.decision is not Decision.APPROVAL_REQUIRED:
        return over.model_copy(update={"risk": decided.risk})
    return Verdict(
        decision=Decision.APPROVAL_REQUIRED,
        rules=tuple(dict.fromkeys((*decided.rules, *over.rules))),
        risk=decided.risk,
        reason=f"{decided.reason.rstrip('.')}. {over.reason}",
        details={**decided.details, **over.details},
    )


class ApprovalStage:
    """APPROVAL_REQUIRED: hold the call for a human, or refuse it until an approval exists (defer).

    ``arguments`` is the audit log's argument policy: the request an approver sees (and
    that is stored and sent to chat channels) carries the arguments as that policy
    would record them, never more.

    ``controls`` gives the operational controls in force. A held call waits for minutes,
    and the breakers the limits stage asked may open meanwhile: the call gives back its
    half-open probe permits while it waits, and once approved it asks the breakers again,
    refused like any call when one is open (a retry needs a new approval).

    The request is asked as the policy rule's ``approval:`` block says, else as that of
    the rate limit or budget that asked for approval, else with the defaults (hold; the
    approvals config's ``default_approvers``).

    Repeats file nothing: a held call identical to one already held waits on that call's
    request (one approval forwards one of them), and a deferred call retried before a
    decision points at its pending request. A call that would file a request while its
    principal has ``max_pending_per_principal`` pending is blocked at once.
    """

    name = "approval"

    def __init__(
        self,
        approvals: ApprovalService | None,
        hold_timeout_s: float | None = None,
        arguments: ArgumentPolicy = "redacted",
        controls: Callable[[], Controls] | None = None,
    ) -> None:
        self.approvals = approvals
        self.hold_timeout_s = hold_timeout_s
        self.arguments = arguments
        self.controls = controls

    async def __call__(self, call: ToolCall) -> Verdict | None:
        verdict = call.verdict
        if verdict.decision is not Decision.APPROVAL_REQUIRED:
            return None if verdict.decision.forwards else verdict
        if self.approvals is None:
            return Verdict(
                decision=Decision.BLOCK,
                rules=verdict.rules,
                risk=verdict.risk,
                reason=f"{verdict.reason} — approval required, but approvals are not configured",
            )
        block = call.policy.approval if call.policy else None
        if block is None and call.admission is not None:
            block = call.admission.approval
        spec = _request_spec(block)
        digest = call_digest(call.principal, call.tool, call.arguments)
        if spec.mode == "defer":
            approved = await self.approvals.consume(call.principal, call.tool, digest)
            if approved is not None:
                call.approval_id = approved
                self._approve(call, "an approved request for exactly this call was used")
                return None
        request = None
        if spec.mode == "defer":
            request = await self._pending_deferral(call, spec, digest)
        if self.controls is not None and call.admission is not None:
            # not forwarded now (held for minutes, or deferred): it probes no half-open breaker
            await self.controls().release_probes(call.admission)
        try:
            if spec.mode == "hold":
                return await self._hold(call, self._context(call, spec, digest))
            if request is None:
                request = await self.approvals.create(self._context(call, spec, digest))
        except TooManyPendingError as exc:  # nothing filed: the principal's pending requests are at the cap
            return Verdict(
                decision=Decision.BLOCK,
                rules=verdict.rules,
                risk=verdict.risk,
                reason=f"{verdict.reason.rstrip('.')}. {exc}",
                details={**verdict.details, "max_pending_per_principal": exc.limit},
            )
        call.approval_id = request.id
        return Verdict(
            decision=Decision.APPROVAL_REQUIRED,
            rules=verdict.rules,
            risk=verdict.risk,
            reason=f"{verdict.reason.rstrip('.')}. A human must approve this call: approval request "
            f"{request.id} is waiting for a decision. Retry the same call with the same arguments "
            "once it is approved.",
            details={**verdict.details, "approval_id": request.id},
        )

    async def _pending_deferral(
        self, call: ToolCall, spec: ApprovalRequestSpec, digest: str
    ) -> ApprovalRequest | None:
        """The pending request of an earlier identical deferred call under the same rule, if any."""
        assert self.approvals is not None
        pending = await self.approvals.pending_deferral(call.principal, call.tool, digest)
        return pending if pending is not None and pending.spec == spec else None

    async def _hold(self, call: ToolCall, context: ApprovalContext) -> Verdict | None:
        """File (or join an identical held call's) request and hold the call until it is decided.

        Raises:
            TooManyPendingError: the principal's pending requests are at the cap; nothing filed.
        """
        assert self.approvals is not None
        spec = context.spec
        timeout = min(spec.ttl_s, self.hold_timeout_s) if self.hold_timeout_s else spec.ttl_s
        async with self.approvals.hold(context, timeout) as held:
            call.approval_id = held.request_id
            return await self._held(call, held)

    async def _held(self, call: ToolCall, held: HeldCall) -> Verdict | None:
        assert self.approvals is not None
        verdict = call.verdict
        request_id = held.request_id

        async def tick(waited: float) -> None:
            if call.report_progress is not None:
                await call.report_progress(waited, None, f"waiting for approval {request_id}")

        outcome = await self.approvals.wait_held(held, on_tick=tick)
        approved = outcome.state is ApprovalState.APPROVED
        verified = approved and outcome.decision is not None and self.approvals.verify(outcome)
        if verified and outcome.decision is not None and self.approvals.release(held):
            self._approve(call, f"approved by {outcome.decision.approver_user}")
            return await self._recheck_breakers(call, request_id)
        if verified:  # one approval forwards one call: another identical held call was forwarded
            why = (
                f"approval request {request_id} was approved once and released another identical call "
                "held on it; this one was not forwarded (retry it to ask for a new approval)"
            )
        elif approved:  # not signed by this gateway's key: the database was written around it
            logger.error("approval %s: its decision does not verify; the held call is refused", request_id)
            why = (
                f"approval request {request_id} is approved, but its decision does not verify "
                "with the gateway's approvals key; the call was not forwarded"
            )
        elif outcome.state is ApprovalState.REJECTED and outcome.decision is not None:
            why = f"rejected by {outcome.decision.approver_user}: {outcome.decision.reason}"
        else:
            why = f"approval request {request_id} {outcome.state.value}" + (
                f" ({outcome.state_reason})" if outcome.state_reason else ""
            )
        return Verdict(
            decision=Decision.BLOCK,
            rules=verdict.rules,
            risk=verdict.risk,
            reason=why,
            details={**verdict.details, "approval_id": request_id},
        )

    async def _recheck_breakers(self, call: ToolCall, request_id: str) -> Verdict | None:
        """The breakers' word on a call approved after a hold: ``None`` to forward it, or
        the refusal of a breaker that opened while a human decided (the approval unused)."""
        if self.controls is None:
            return None
        if call.admission is None:
            call.admission = Admission()
        refused = await self.controls().recheck_breakers(control_call(call), call.admission)
        if refused is None:
            return None
        return Verdict(
            decision=refused.decision,
            rules=refused.rules,
            risk=call.verdict.risk,
            reason=f"{refused.reason} Approval {request_id} was given while the call was held, but "
            "the call was not forwarded into the open breaker; retrying needs a new approval.",
            details={**refused.details, "approval_id": request_id},
        )

    def _approve(self, call: ToolCall, how: str) -> None:
        verdict = call.verdict
        call.verdict = Verdict(
            decision=Decision.ALLOW,
            rules=verdict.rules,
            risk=verdict.risk,
            reason=f"{verdict.reason} — {how}",
            details={**verdict.details, "approval_id": call.approval_id},
        )

    def _context(self, call: ToolCall, spec: ApprovalRequestSpec, digest: str) -> ApprovalContext:
        history: list[dict[str, Any]] = []
        if call.session is not None:
            history = [
                {"tool": r.tool, "at": r.at.isoformat(), "decision": r.decision.value if r.decision else None}
                for r in call.session.recent(10)
            ]
        return ApprovalContext(
            principal=call.principal,
            session_id=call.session_id,
            tool=call.tool,
            upstream=call.route.upstream if call.route else None,
            arguments=approver_arguments(call, self.arguments),
            call_digest=digest,
            findings=[f.model_dump(mode="json") for f in call.findings],
            risk=call.risk,
            risk_breakdown=call.risk_assessment.breakdown() if call.risk_assessment else {},
            rules=call.verdict.rules,
            reason=call.verdict.reason,
            history=history,
            spec=spec,
        )


def approver_arguments(call: ToolCall, policy: ArgumentPolicy) -> dict[str, Any]:
    """The arguments an approver is shown, as the audit ``policy`` would store them.

    The approval request is kept in the approvals database and posted to webhooks and
    chat channels, so a secret found in the arguments must not travel with it: it is
    redacted (``redacted``), dropped with everything else (``digest``), or kept only
    when the operator asked for ``full`` arguments.
    """
    shown: dict[str, Any] | None = arguments_as_recorded(call.arguments, call, policy)
    return {} if shown is None else shown


def _request_spec(rule: ApprovalSpec | None) -> ApprovalRequestSpec:
    """The approvals service's view of a rule's ``approval:`` block (defaults when absent)."""
    if rule is None:
        return ApprovalRequestSpec()
    given = {"ttl_s": rule.ttl_s, "valid_for_s": rule.valid_for_s}
    extra: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    return ApprovalRequestSpec(
        mode=rule.mode,
        allow_self=rule.allow_self,
        approvers=rule.approvers,
        channels=rule.channels,
        **extra,
    )
