"""Risk thresholds: the score at which each decision starts."""

from __future__ import annotations

from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcp_guard.decision import Decision


class RiskThresholds(BaseModel):
    """Scores at or above ``block`` BLOCK, ``approval`` need approval, ``warn`` WARN.

    ``monitor`` (off by default) marks scores at or above it MONITOR_ONLY. A threshold
    of ``None`` disables that decision. Enabled thresholds must not decrease with
    severity (``warn <= approval <= block``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    block: float | None = Field(default=90.0, ge=0, le=100)
    approval: float | None = Field(default=70.0, ge=0, le=100)
    warn: float | None = Field(default=50.0, ge=0, le=100)
    monitor: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> RiskThresholds:
        named = [
            ("monitor", self.monitor),
            ("warn", self.warn),
            ("approval", self.approval),
            ("block", self.block),
        ]
        enabled = [(n, v) for n, v in named if v is not None]
        for (low_name, low), (high_name, high) in pairwise(enabled):
            if high < low:
                raise ValueError(f"threshold '{high_name}' ({high:g}) is below '{low_name}' ({low:g})")
        return self

    def as_mapping(self) -> dict[Decision, float]:
        """The enabled thresholds as ``{Decision: score}`` (the policy engine's ``risk_thresholds``)."""
        pairs = (
            (Decision.BLOCK, self.block),
            (Decision.APPROVAL_REQUIRED, self.approval),
            (Decision.WARN, self.warn),
            (Decision.MONITOR_ONLY, self.monitor),
        )
        return {d: v for d, v in pairs if v is not None}

    def decision(self, score: float) -> Decision:
        """The most severe decision whose threshold ``score`` reaches (ALLOW below all of them)."""
        for decision, threshold in self.as_mapping().items():
            if score >= threshold:
                return decision
        return Decision.ALLOW
