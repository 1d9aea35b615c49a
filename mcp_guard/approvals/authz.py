"""Who may decide and who may look: approver matching, self-approval, tenant separation."""

from __future__ import annotations

from collections.abc import Iterable

from mcp_guard.approvals.errors import NotAnApproverError, SelfApprovalError
from mcp_guard.approvals.models import ApprovalRequest, Approvers
from mcp_guard.principal import Principal


def effective_approvers(request: ApprovalRequest, default: Approvers) -> Approvers:
    """The request's approvers, or ``default`` when its rule named none."""
    approvers = request.spec.approvers
    return default if approvers.empty else approvers


def may_be_requester(approver: Principal, requester: Principal) -> bool:
    """Whether ``approver`` may be the person who asked: the same identity
    (:meth:`Principal.same_identity`: the same user of the same tenant, whatever the agent),
    or the same user where either has no tenant, which cannot tell the two apart (an
    operator's token, a Slack approver or the CLI name no tenant). Only the same user name
    in two different named tenants is known to be someone else."""
    if approver.user != requester.user:
        return False
    return approver.same_identity(requester) or None in (approver.tenant, requester.tenant)


def authorise_decision(request: ApprovalRequest, approver: Principal, default: Approvers) -> None:
    """Allow ``approver`` to decide ``request`` or raise.

    The requester (see :func:`may_be_requester`) may never decide its own request
    unless the rule sets ``allow_self``; otherwise the approver must match a role,
    user or team of the rule's approvers (or ``default`` when the rule names none)
    and, when the requester belongs to a tenant, the same tenant.

    Raises:
        SelfApprovalError: the approver may be the requester and ``allow_self`` is off.
        NotAnApproverError: the approver matches none of the approvers.
    """
    requester = request.principal
    if may_be_requester(approver, requester) and not request.spec.allow_self:
        raise SelfApprovalError(request.id, approver.user)
    if requester.tenant is not None and approver.tenant not in (None, requester.tenant):
        raise NotAnApproverError(request.id, approver.user)
    if not effective_approvers(request, default).matches(approver):
        raise NotAnApproverError(request.id, approver.user)


def authorise_self_confirmation(request: ApprovalRequest, principal: Principal) -> None:
    """Allow the requester itself to confirm (MCP elicitation) or raise.

    Raises:
        SelfApprovalError: the rule does not set ``allow_self``.
        NotAnApproverError: ``principal`` is not the requester.
    """
    if not principal.same_identity(request.principal):
        raise NotAnApproverError(request.id, principal.user)
    if not request.spec.allow_self:
        raise SelfApprovalError(request.id, principal.user)


def can_view(
    request: ApprovalRequest, viewer: Principal, default: Approvers, admin_roles: Iterable[str]
) -> bool:
    """Whether ``viewer`` may read ``request`` in the admin API: its requester (the same
    user of the same tenant), an approver, or an admin."""
    if viewer.same_identity(request.principal):
        return True
    if not viewer.roles.isdisjoint(admin_roles):
        return True
    requester_tenant = request.principal.tenant
    if requester_tenant is not None and viewer.tenant not in (None, requester_tenant):
        return False
    return effective_approvers(request, default).matches(viewer)
