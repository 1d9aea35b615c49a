"""The state of one governed ``tools/call`` as it moves through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mcp import types
from mcp.shared.dispatcher import ProgressFnT

from mcp_guard.decision import ALLOWED, Verdict
from mcp_guard.findings import Finding
from mcp_guard.principal import Principal
from mcp_guard.upstreams.catalog import Route

if TYPE_CHECKING:
    from mcp_guard.audit import AuditReceipt
    from mcp_guard.controls import Admission
    from mcp_guard.policy import PolicyResult, ToolInfo
    from mcp_guard.risk import RiskAssessment
    from mcp_guard.sessions import Session

ProgressReporter = ProgressFnT


@dataclass
class ToolCall:
    """Everything known about one call. Stages read it and add to it.

    ``arguments`` are what the client sent; ``forward_arguments`` what will be
    forwarded (a stage may redact them); ``argument_bytes`` the size of their JSON form
    (measured by the validate stage). ``verdict`` is the decision so far.
    ``risk_assessment`` is the score stage's whole assessment: its JSON-ready
    ``breakdown()`` is built only when something shows it (an approval request).
    ``admission`` is what the limits stage took (budget charges, breaker probe permits),
    given back unless ``forwarded`` says the call reached the upstream.
    """

    principal: Principal
    session_id: str
    tool: str
    arguments: dict[str, Any]
    received_at: datetime
    meta: dict[str, Any] | None = None
    client_info: dict[str, Any] | None = None
    report_progress: ProgressReporter | None = None
    route: Route | None = None
    definition: types.Tool | None = None
    info: ToolInfo | None = None
    session: Session | None = None
    workflow: Session | None = None
    principal_session: Session | None = None
    shape: str | None = None
    forward_arguments: dict[str, Any] | None = None
    argument_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    result_findings: list[Finding] = field(default_factory=list)
    risk: float | None = None
    risk_factors: dict[str, float] = field(default_factory=dict)
    risk_assessment: RiskAssessment | None = None
    policy: PolicyResult | None = None
    verdict: Verdict = ALLOWED
    audit_id: str | None = None
    audit_receipt: AuditReceipt | None = None
    approval_id: str | None = None
    admission: Admission | None = None
    forwarded: bool = False
    timings_us: dict[str, float] = field(default_factory=dict)

    @property
    def sessions(self) -> tuple[Session, ...]:
        """The sessions this call is recorded in and taints: its MCP session, its workflow
        session and its principal's session, those that exist."""
        return tuple(s for s in (self.session, self.workflow, self.principal_session) if s is not None)

    @property
    def actions(self) -> frozenset[str]:
        return self.info.actions if self.info is not None else frozenset()
