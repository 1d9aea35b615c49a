"""The data of an approval: its spec, the context an approver sees, the signed decision, the states."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_guard.audit.canonical import digest
from mcp_guard.durations import MAX_DURATION_S, parse_duration
from mcp_guard.principal import Principal


class ApprovalState(StrEnum):
    """Where a request is in its life.

    ``pending`` -> ``approved`` | ``rejected`` | ``expired`` | ``abandoned``;
    ``approved`` (defer mode) -> ``used`` | ``expired``.
    """

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    ABANDONED = "abandoned"
    USED = "used"


TERMINAL_STATES = frozenset(
    {ApprovalState.REJECTED, ApprovalState.EXPIRED, ApprovalState.ABANDONED, ApprovalState.USED}
)

ApprovalMode = Literal["hold", "defer"]


class Approvers(BaseModel):
    """Who may decide: anyone holding one of ``roles``, named in ``users``, or in one of ``teams``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.roles or self.users or self.teams)

    def matches(self, principal: Principal) -> bool:
        """Whether ``principal`` matches any role, user or team listed here."""
        return (
            principal.user in self.users
            or not principal.roles.isdisjoint(self.roles)
            or not principal.teams.isdisjoint(self.teams)
        )


class ApprovalSpec(BaseModel):
    """A rule's ``approval:`` block: how a call that needs a human is handled.

    ``mode``: ``hold`` keeps the call open until a decision (sending MCP progress);
    ``defer`` answers at once with the approval id and lets a later identical call
    through once approved. ``ttl_s``: how long a request may stay pending.
    ``valid_for_s`` (defer): how long an approval stays usable. ``channels``: notifier
    names to use; ``None`` means every configured channel.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ApprovalMode = "hold"
    approvers: Approvers = Field(default_factory=Approvers)
    allow_self: bool = False
    ttl_s: float = Field(default=900.0, gt=0)
    valid_for_s: float = Field(default=600.0, gt=0)
    channels: tuple[str, ...] | None = None


class ApprovalBlock(BaseModel):
    """The ``approval:`` block of an APPROVAL_REQUIRED policy rule, rate limit or budget.

    The policy engine and the controls validate its shape and carry it; the approval
    stage turns it into the :class:`ApprovalSpec` of a request. ``ttl_s`` and
    ``valid_for_s`` are the ``ttl`` and ``valid_for`` durations in seconds (``None`` when
    not given: the approvals defaults apply), above 0 and at most 365 days; ``channels``
    names the notifiers to use (``None``: every configured one). ``rule_id`` names the
    rule or control that carries it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: ApprovalMode = "hold"
    approvers: Approvers = Field(default_factory=Approvers)
    allow_self: bool = False
    ttl_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S, allow_inf_nan=False)
    valid_for_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S, allow_inf_nan=False)
    channels: tuple[str, ...] | None = None
    rule_id: str = ""
    file: str = ""
    line: int = 0


BLOCK_KEYS = "mode, approvers, allow_self, ttl, valid_for, channels"


def approval_block_fields(value: Any) -> dict[str, Any]:
    """An ``approval:`` block as written (``ttl: 15m``) in the fields of :class:`ApprovalBlock`.

    Raises:
        ValueError: not a mapping, a duration that does not parse, or a key only the
            gateway sets (``ttl_s``, ``rule_id``, ...).
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping ({BLOCK_KEYS})")
    for internal in ("ttl_s", "valid_for_s", "rule_id", "file", "line"):
        if internal in value:
            raise ValueError(f"unknown key '{internal}'")
    data = dict(value)
    for key in ("ttl", "valid_for"):
        if key in data:
            try:
                data[f"{key}_s"] = parse_duration(data.pop(key), positive=True)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    return data


class ApprovalContext(BaseModel):
    """Everything an approver needs to decide, as the gateway pipeline saw the call.

    ``arguments`` are already redacted by the caller per audit policy; ``call_digest``
    is :func:`call_digest` over the *unredacted* arguments, so a deferred approval
    matches exactly one call.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: Principal
    session_id: str | None = None
    tool: str
    upstream: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    call_digest: str
    findings: list[dict[str, Any]] = Field(default_factory=list)
    risk: float | None = None
    risk_breakdown: dict[str, Any] = Field(default_factory=dict)
    rules: tuple[str, ...] = ()
    reason: str = ""
    history: list[dict[str, Any]] = Field(default_factory=list)
    spec: ApprovalSpec = Field(default_factory=ApprovalSpec)


class SignedDecision(BaseModel):
    """A human decision, signed with the gateway's Ed25519 approvals key.

    ``payload`` is the exact canonical JSON text that was signed (see
    :func:`mcp_guard.approvals.decisions.decision_payload`); ``signature`` is its
    base64 Ed25519 signature; ``key_id`` the signing key's fingerprint.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    approve: bool
    approver_user: str
    approver_agent: str | None = None
    reason: str = ""
    decided_at: datetime
    via: str
    payload: str
    signature: str
    key_id: str


class ApprovalRequest(BaseModel):
    """One approval request as stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    state: ApprovalState
    created_at: datetime
    expires_at: datetime
    context: ApprovalContext
    decision: SignedDecision | None = None
    valid_until: datetime | None = None
    """Defer mode: an approval can be used until then."""
    closed_at: datetime | None = None
    """When the request left ``pending``/``approved`` for a terminal state."""
    state_reason: str | None = None
    """Why it expired or was abandoned."""

    @property
    def principal(self) -> Principal:
        return self.context.principal

    @property
    def tool(self) -> str:
        return self.context.tool

    @property
    def spec(self) -> ApprovalSpec:
        return self.context.spec

    @property
    def call_digest(self) -> str:
        return self.context.call_digest


DeliveryState = Literal["pending", "delivered", "gave_up"]


class DeliveryStatus(BaseModel):
    """How notifying one channel about one request is going."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    channel: str
    state: DeliveryState
    attempts: int = 0
    last_error: str | None = None
    updated_at: datetime | None = None


def call_digest(principal: Principal, tool: str, arguments: dict[str, Any]) -> str:
    """SHA-256 over canonical JSON of ``{principal.key, tool, arguments}``: one exact call.

    Raises:
        TypeError, ValueError: ``arguments`` is not JSON (see ``mcp_guard.audit.canonical``).
    """
    return digest({"principal": principal.key, "tool": tool, "arguments": arguments})
