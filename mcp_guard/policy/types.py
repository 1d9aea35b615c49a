"""The decision contract of the policy engine: what goes in, what comes out.

A :class:`PolicyRequest` carries everything a decision may depend on, including the
clock (``now``) and the session history, so evaluation is pure and deterministic.
A :class:`PolicyResult` carries the enforced :class:`~mcp_guard.decision.Verdict`,
the shadow verdict (computed, audited, never enforced) and the explanation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mcp_guard.approvals.models import ApprovalBlock
from mcp_guard.decision import Decision, Verdict
from mcp_guard.findings import Finding
from mcp_guard.principal import Principal

ACTION_CLASSES = frozenset({"read", "write", "delete", "execute", "external", "privileged"})


class SessionHistory(Protocol):
    """Recent calls of the session a request belongs to."""

    def count(self, tool_glob: str, within_s: float, now: datetime) -> int:
        """How many calls to tools matching ``tool_glob`` happened in ``(now - within_s, now]``."""
        ...


class _NoHistory:
    def count(self, tool_glob: str, within_s: float, now: datetime) -> int:
        return 0


NO_HISTORY: SessionHistory = _NoHistory()


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A namespaced tool as the policy engine sees it.

    ``actions`` are the tool's action classes, already classified (see
    :meth:`PolicySet.classify`). ``upstream`` defaults to the part of ``name`` before
    the first ``__``. ``annotations`` are the MCP tool annotations (untrusted hints).
    """

    name: str
    upstream: str = ""
    actions: frozenset[str] = frozenset()
    environment: str | None = None
    annotations: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.upstream and "__" in self.name:
            object.__setattr__(self, "upstream", self.name.split("__", 1)[0])


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One call to decide. ``now`` must be timezone-aware (naive values are read as UTC).

    ``history`` holds the calls of this MCP session; ``principal_history`` those of the
    principal across all its connections (``history: {across: principal}``)."""

    principal: Principal
    tool: ToolInfo
    now: datetime
    arguments: Mapping[str, Any] = field(default_factory=dict)
    findings: Sequence[Finding] = ()
    risk: float | None = None
    risk_factors: Mapping[str, float] = field(default_factory=dict)
    history: SessionHistory = NO_HISTORY
    principal_history: SessionHistory = NO_HISTORY


ApprovalSpec = ApprovalBlock
"""The ``approval:`` block of an APPROVAL_REQUIRED rule (see :class:`ApprovalBlock`)."""


@dataclass(frozen=True)
class PolicyResult:
    """The outcome of :meth:`PolicySet.evaluate`.

    - ``verdict``: the enforced decision with ``rules`` (what decided) and ``reason``.
    - ``shadow``: what would have been enforced had the shadow rules been live; ``None``
      when no shadow rule's conditions held.
    - ``matched``: every rule whose scope, match and conditions held, in evaluation order
      (shadow rules included, Rego rule ids appended).
    - ``deciding_rule``: the rule that produced the rule part of the decision (``None``
      when the default applied).
    - ``risk_decision``: what the risk thresholds alone said (``None`` without a score).
    - ``hidden``: the tool is hidden from this principal (answer "unknown tool").
    - ``approval``: the deciding rule's ``approval:`` block when the verdict is
      APPROVAL_REQUIRED.
    """

    verdict: Verdict
    shadow: Verdict | None = None
    matched: tuple[str, ...] = ()
    deciding_rule: str | None = None
    risk_decision: Decision | None = None
    reasons: tuple[str, ...] = ()
    hidden: bool = False
    approval: ApprovalSpec | None = None

    @property
    def decision(self) -> Decision:
        return self.verdict.decision
