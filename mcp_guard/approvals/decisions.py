"""Signed decisions: what is signed, how, and how anyone holding the public key checks it.

The signed payload is the canonical JSON (RFC 8785, ``mcp_guard.audit.canonical``) of::

    {"approval_id": ..., "call_digest": ..., "decision": "approve" | "reject",
     "approver": {"user": ..., "agent": ...}, "reason": ..., "time": RFC 3339 UTC, "via": ...}

signed with Ed25519 (``mcp_guard.signing``). The payload text and the signature are
stored with the request and written to the audit log.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_guard.approvals.models import ApprovalRequest, SignedDecision
from mcp_guard.audit.canonical import canonical_json
from mcp_guard.audit.models import format_time
from mcp_guard.principal import Principal
from mcp_guard.signing import PublicKeyLike, key_id, sign, verify_signature


def decision_payload(
    *,
    approval_id: str,
    call_digest: str,
    approve: bool,
    approver_user: str,
    approver_agent: str | None,
    reason: str,
    decided_at: datetime,
    via: str,
) -> dict[str, Any]:
    """The object whose canonical JSON is signed."""
    return {
        "approval_id": approval_id,
        "call_digest": call_digest,
        "decision": "approve" if approve else "reject",
        "approver": {"user": approver_user, "agent": approver_agent},
        "reason": reason,
        "time": format_time(decided_at),
        "via": via,
    }


def sign_decision(
    key: Ed25519PrivateKey,
    request: ApprovalRequest,
    approver: Principal,
    *,
    approve: bool,
    reason: str,
    decided_at: datetime,
    via: str,
) -> SignedDecision:
    """Sign ``approver``'s decision on ``request``."""
    payload = canonical_json(
        decision_payload(
            approval_id=request.id,
            call_digest=request.call_digest,
            approve=approve,
            approver_user=approver.user,
            approver_agent=approver.agent,
            reason=reason,
            decided_at=decided_at,
            via=via,
        )
    )
    return SignedDecision(
        approve=approve,
        approver_user=approver.user,
        approver_agent=approver.agent,
        reason=reason,
        decided_at=decided_at,
        via=via,
        payload=payload,
        signature=sign(key, payload.encode("utf-8")),
        key_id=key_id(key),
    )


def verify_decision(request: ApprovalRequest, public_key: PublicKeyLike) -> bool:
    """Whether ``request`` carries a decision validly signed by ``public_key`` that matches it.

    Checks the Ed25519 signature over the stored payload text, and that the payload
    names this request, its call digest, and the decision, approver, reason and time
    stored beside it (so editing either the payload or the stored fields is caught).
    A request without a decision is not verified.

    Raises:
        mcp_guard.signing.SigningKeyError: ``public_key`` is PEM text that does not
            hold an Ed25519 public key.
    """
    d = request.decision
    if d is None:
        return False
    if not verify_signature(public_key, d.payload.encode("utf-8"), d.signature):
        return False
    try:
        signed = json.loads(d.payload)
    except ValueError:
        return False
    expected = decision_payload(
        approval_id=request.id,
        call_digest=request.call_digest,
        approve=d.approve,
        approver_user=d.approver_user,
        approver_agent=d.approver_agent,
        reason=d.reason,
        decided_at=d.decided_at,
        via=d.via,
    )
    return bool(signed == expected)
