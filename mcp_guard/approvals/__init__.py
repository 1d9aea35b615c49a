"""Human-in-the-loop approvals: hold or defer a call until an authorised human decides.

See docs/approvals.md. The gateway pipeline uses::

    async with ApprovalService.open(config, audit) as approvals:
        digest = call_digest(principal, tool, arguments)
        approval_id = await approvals.consume(principal, tool, digest)      # defer: already approved?
        request = await approvals.create(ApprovalContext(...))              # persisted, then notified
        outcome = await approvals.wait(request.id, timeout_s, on_tick=...)  # hold
        await approvals.decide(request.id, approver, approve=True, reason="...")
"""

from mcp_guard.approvals.config import (
    ApprovalConfig,
    ChannelConfig,
    RetryPolicy,
    SlackApprover,
    SlackChannel,
    SlackInteractivity,
    TeamsChannel,
    WebhookChannel,
)
from mcp_guard.approvals.decisions import decision_payload, sign_decision, verify_decision
from mcp_guard.approvals.errors import (
    ApprovalError,
    ApprovalExpiredError,
    ApprovalHoldFailedError,
    ApprovalNotFoundError,
    ApprovalNotPendingError,
    NotAnApproverError,
    SelfApprovalError,
    TooManyPendingError,
)
from mcp_guard.approvals.holds import HeldCall
from mcp_guard.approvals.models import (
    ApprovalContext,
    ApprovalMode,
    ApprovalRequest,
    ApprovalSpec,
    ApprovalState,
    Approvers,
    DeliveryStatus,
    SignedDecision,
    call_digest,
)
from mcp_guard.approvals.notifiers import DeliveryError, Notifier
from mcp_guard.approvals.routes import approval_routes
from mcp_guard.approvals.service import ApprovalService, OnTick
from mcp_guard.approvals.slack import SlackSignatureError, slack_routes, verify_slack_signature
from mcp_guard.approvals.store import ApprovalStoreError

__all__ = [
    "ApprovalConfig",
    "ApprovalContext",
    "ApprovalError",
    "ApprovalExpiredError",
    "ApprovalHoldFailedError",
    "ApprovalMode",
    "ApprovalNotFoundError",
    "ApprovalNotPendingError",
    "ApprovalRequest",
    "ApprovalService",
    "ApprovalSpec",
    "ApprovalState",
    "ApprovalStoreError",
    "Approvers",
    "ChannelConfig",
    "DeliveryError",
    "DeliveryStatus",
    "HeldCall",
    "NotAnApproverError",
    "Notifier",
    "OnTick",
    "RetryPolicy",
    "SelfApprovalError",
    "SignedDecision",
    "SlackApprover",
    "SlackChannel",
    "SlackInteractivity",
    "SlackSignatureError",
    "TeamsChannel",
    "TooManyPendingError",
    "WebhookChannel",
    "approval_routes",
    "call_digest",
    "decision_payload",
    "sign_decision",
    "slack_routes",
    "verify_decision",
    "verify_slack_signature",
]
