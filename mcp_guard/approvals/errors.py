"""The approvals exception hierarchy. Each error carries the HTTP status the admin API answers with."""

from __future__ import annotations

from mcp_guard.errors import GuardError


class ApprovalError(GuardError):
    """A decision or lookup on an approval request was refused.

    ``code`` is a stable machine-readable name; ``status`` the HTTP status the admin
    API answers with.
    """

    code = "approval_error"
    status = 400

    def __init__(self, request_id: str, message: str) -> None:
        self.request_id = request_id
        super().__init__(message)


class ApprovalNotFoundError(ApprovalError):
    """No approval request has this id (or the caller may not see it)."""

    code = "not_found"
    status = 404

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id, f"approval request '{request_id}' does not exist")


class ApprovalNotPendingError(ApprovalError):
    """The request was already decided, abandoned or used."""

    code = "not_pending"
    status = 409

    def __init__(self, request_id: str, state: str) -> None:
        self.state = state
        super().__init__(request_id, f"approval request '{request_id}' is {state}, not pending")


class ApprovalExpiredError(ApprovalNotPendingError):
    """The request's time to live ran out before anyone decided."""

    code = "expired"

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id, "expired")


class NotAnApproverError(ApprovalError):
    """The principal matches none of the request's approvers (role, user or team)."""

    code = "not_an_approver"
    status = 403

    def __init__(self, request_id: str, user: str) -> None:
        self.user = user
        super().__init__(request_id, f"user '{user}' is not an approver of approval request '{request_id}'")


class SelfApprovalError(ApprovalError):
    """The requester tried to decide its own request and the rule does not allow it."""

    code = "self_approval"
    status = 403

    def __init__(self, request_id: str, user: str) -> None:
        self.user = user
        super().__init__(
            request_id,
            f"user '{user}' requested approval request '{request_id}' and may not decide it "
            "(the rule's approval block does not set allow_self)",
        )


class ApprovalHoldFailedError(ApprovalError):
    """Holding a call for a decision failed (the approvals database, the audit log or the
    progress report raised): the call is not forwarded, and its request is abandoned unless
    identical calls still hold it (``abandoned`` says which)."""

    code = "hold_failed"
    status = 503

    def __init__(self, request_id: str, cause: str, *, abandoned: bool = True) -> None:
        self.cause = cause
        self.abandoned = abandoned
        what = (
            "the request is abandoned" if abandoned else "the request stays pending for identical held calls"
        )
        super().__init__(
            request_id,
            f"approval request '{request_id}': holding the call failed ({cause}); the call was not "
            f"forwarded and {what}",
        )


class TooManyPendingError(GuardError):
    """A principal already has ``limit`` requests pending: no new one is filed (or notified)."""

    code = "too_many_pending"
    status = 429

    def __init__(self, principal_key: str, limit: int) -> None:
        self.principal_key = principal_key
        self.limit = limit
        super().__init__(
            f"approval required, but {principal_key} already has {limit} approval requests pending "
            f"(approvals.max_pending_per_principal = {limit}); nothing was filed or notified: "
            "wait for a decision on the pending ones"
        )
