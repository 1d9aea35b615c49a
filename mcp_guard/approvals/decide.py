"""Deciding a request: check, authorise, sign, store, audit. Shared by the service and the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_guard.approvals.authz import authorise_decision, authorise_self_confirmation
from mcp_guard.approvals.decisions import sign_decision
from mcp_guard.approvals.errors import ApprovalExpiredError, ApprovalNotFoundError, ApprovalNotPendingError
from mcp_guard.approvals.events import ApprovalEvent, audited
from mcp_guard.approvals.models import ApprovalRequest, ApprovalState, Approvers
from mcp_guard.approvals.store import ApprovalStore
from mcp_guard.audit.protocol import AuditLog
from mcp_guard.principal import Principal


def is_overdue(request: ApprovalRequest, now: datetime) -> bool:
    """Whether ``request`` should expire at ``now``: pending past ttl, or an unused approval past validity."""
    if request.state is ApprovalState.PENDING:
        return now >= request.expires_at
    if request.state is ApprovalState.APPROVED and request.valid_until is not None:
        return now >= request.valid_until
    return False


async def record_decision(
    store: ApprovalStore,
    key: Ed25519PrivateKey,
    audit: AuditLog | None,
    *,
    request_id: str,
    approver: Principal,
    approve: bool,
    reason: str,
    now: datetime,
    via: str,
    default_approvers: Approvers,
    self_confirmation: bool = False,
) -> ApprovalRequest:
    """Decide ``request_id`` as ``approver``; the signed decision is audited and stored together.

    The audit entry is written inside the approvals transaction, before it commits: a
    decision that cannot be audited never takes effect (no held call is released, no
    deferred call can use it).

    Raises:
        ApprovalNotFoundError: no such request.
        ApprovalExpiredError: its ttl ran out.
        ApprovalNotPendingError: it was already decided, abandoned or used (also
            when another decider won a race).
        NotAnApproverError, SelfApprovalError: ``approver`` may not decide it.
        mcp_guard.audit.AuditUnavailableError: the decision could not be audited, so
            it was not stored (the request stays pending).
    """
    request = await store.get(request_id)
    if request is None:
        raise ApprovalNotFoundError(request_id)
    if request.state is ApprovalState.EXPIRED or is_overdue(request, now):
        raise ApprovalExpiredError(request_id)
    if request.state is not ApprovalState.PENDING:
        raise ApprovalNotPendingError(request_id, request.state.value)
    if self_confirmation:
        authorise_self_confirmation(request, approver)
    else:
        authorise_decision(request, approver, default_approvers)
    signed = sign_decision(key, request, approver, approve=approve, reason=reason, decided_at=now, via=via)
    valid_until = None
    if approve and request.spec.mode == "defer":
        valid_until = now + timedelta(seconds=request.spec.valid_for_s)
    event: ApprovalEvent = "approved" if approve else "rejected"
    decided = await store.record_decision(
        request_id, signed, valid_until, before_commit=audited(audit, event)
    )
    if decided is None:
        current = await store.get(request_id)
        raise ApprovalNotPendingError(request_id, "gone" if current is None else current.state.value)
    return decided
