"""Decisions: the five outcomes of a governed call and how they combine.

DESIGN.md §2. Severity order: BLOCK > APPROVAL_REQUIRED > WARN > MONITOR_ONLY > ALLOW.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Decision(StrEnum):
    """What the gateway does with a call."""

    ALLOW = "ALLOW"
    MONITOR_ONLY = "MONITOR_ONLY"
    WARN = "WARN"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
    BLOCK = "BLOCK"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def forwards(self) -> bool:
        """Whether a call with this decision reaches the upstream without a human."""
        return self in (Decision.ALLOW, Decision.MONITOR_ONLY, Decision.WARN)


_SEVERITY = {
    Decision.ALLOW: 0,
    Decision.MONITOR_ONLY: 1,
    Decision.WARN: 2,
    Decision.APPROVAL_REQUIRED: 3,
    Decision.BLOCK: 4,
}


def most_severe(*decisions: Decision) -> Decision:
    """The most severe of ``decisions`` (ALLOW when none are given)."""
    return max(decisions, key=_SEVERITY.__getitem__, default=Decision.ALLOW)


class Verdict(BaseModel):
    """A decision with its explanation: the contract every deciding stage produces.

    ``rules`` are the ids of the rules (or controls) that produced the decision;
    ``reason`` is one human-readable sentence; ``risk`` is the composite score
    (0-100) when one was computed.
    """

    model_config = ConfigDict(frozen=True)

    decision: Decision
    rules: tuple[str, ...] = ()
    reason: str = ""
    risk: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def meta(self, audit_id: str | None, approval_id: str | None = None) -> dict[str, Any]:
        """The machine-readable copy placed in ``_meta["mcp-guard/decision"]`` (DESIGN.md §7),
        plus ``retry_after`` (seconds) when a rate limit, budget or breaker says when to retry."""
        out: dict[str, Any] = {
            "decision": self.decision.value,
            "rules": list(self.rules),
            "risk": self.risk,
            "reason": self.reason,
            "audit_id": audit_id,
        }
        if approval_id is not None:
            out["approval_id"] = approval_id
        if "retry_after" in self.details:
            out["retry_after"] = self.details["retry_after"]
        return out


ALLOWED = Verdict(decision=Decision.ALLOW, reason="allowed")
