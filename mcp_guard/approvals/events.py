"""Audit entries of kind ``approval``: created, approved, rejected, expired, abandoned, used."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mcp_guard.approvals.models import ApprovalRequest
from mcp_guard.approvals.store import BeforeCommit
from mcp_guard.audit.models import format_time
from mcp_guard.audit.protocol import AuditLog

ApprovalEvent = Literal["created", "approved", "rejected", "expired", "abandoned", "used"]


class ApprovalAuditRecord(BaseModel):
    """The record of an ``approval`` audit entry.

    For ``approved``/``rejected`` it holds the signed payload, the signature and the
    key id, so the audit log alone proves who decided what.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: ApprovalEvent
    approval_id: str
    state: str
    call_digest: str
    principal: str
    user: str
    agent: str | None
    tool: str
    upstream: str | None
    session_id: str | None
    mode: str
    rules: list[str]
    risk: float | None
    expires_at: str
    reason: str | None = None
    signed_payload: str | None = None
    signature: str | None = None
    key_id: str | None = None


def audit_record(event: ApprovalEvent, request: ApprovalRequest, reason: str | None = None) -> dict[str, Any]:
    """The audit record describing ``event`` on ``request`` (in its state after the event)."""
    ctx = request.context
    d = request.decision if event in ("approved", "rejected") else None
    record = ApprovalAuditRecord(
        event=event,
        approval_id=request.id,
        state=request.state.value,
        call_digest=ctx.call_digest,
        principal=ctx.principal.key,
        user=ctx.principal.user,
        agent=ctx.principal.agent,
        tool=ctx.tool,
        upstream=ctx.upstream,
        session_id=ctx.session_id,
        mode=ctx.spec.mode,
        rules=list(ctx.rules),
        risk=ctx.risk,
        expires_at=format_time(request.expires_at),
        reason=reason if d is None else d.reason,
        signed_payload=None if d is None else d.payload,
        signature=None if d is None else d.signature,
        key_id=None if d is None else d.key_id,
    )
    return record.model_dump(mode="json", exclude_none=True)


async def emit(
    audit: AuditLog | None, event: ApprovalEvent, request: ApprovalRequest, reason: str | None = None
) -> None:
    """Append the ``approval`` entry for ``event`` (nothing when no audit log is configured).

    Raises:
        mcp_guard.audit.AuditUnavailableError: the entry could not be committed.
    """
    if audit is not None:
        await audit.append("approval", audit_record(event, request, reason))


def audited(audit: AuditLog | None, event: ApprovalEvent, reason: str | None = None) -> BeforeCommit:
    """A store ``before_commit`` hook appending ``event``'s entry inside the state change's
    transaction: the change commits only once it is audited (write-ahead), and an entry
    whose commit then fails is a duplicate on retry rather than a gap."""

    async def append(request: ApprovalRequest) -> None:
        await emit(audit, event, request, reason)

    return append
