"""What the risk scorer takes and gives: :class:`RiskInput`, :class:`FactorScore`, :class:`RiskAssessment`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

from mcp_guard.findings import Finding
from mcp_guard.principal import Principal
from mcp_guard.sessions.session import Session

ACTION: Final = "action"
PAYLOAD: Final = "payload"
TEMPORAL: Final = "temporal"
ENVIRONMENT: Final = "environment"
BEHAVIOUR: Final = "behaviour"
CORRELATION: Final = "correlation"
THREAT: Final = "threat"
FACTORS: Final = (ACTION, PAYLOAD, TEMPORAL, ENVIRONMENT, BEHAVIOUR, CORRELATION, THREAT)
"""The seven factor names, in breakdown order (``risk.factors.<name>`` in policies)."""


class RiskInput(NamedTuple):
    """One call to score (a named tuple: immutable, and cheap to build once per call).

    ``actions`` are the tool's action classes from the policy layer; ``environment`` is
    the upstream's environment (``None`` when not configured); ``findings`` are the
    detector findings in the *arguments*; ``session`` / ``workflow`` / ``principal_session``
    are the call's MCP session, workflow session and its principal's session across all
    connections (before this call is recorded in them); ``now`` is the
    wall time, timezone-aware (naive values are read as UTC). ``shape`` may carry a
    precomputed :func:`~mcp_guard.sessions.shape.argument_shape` of ``arguments``.
    """

    principal: Principal
    tool: str
    upstream: str
    actions: frozenset[str]
    environment: str | None
    arguments: Mapping[str, Any]
    findings: Sequence[Finding]
    session: Session | None
    now: datetime
    workflow: Session | None = None
    shape: str | None = None
    principal_session: Session | None = None


class FactorScore(NamedTuple):
    """One factor: its ``score`` (0-100), its ``weight`` (0-1) and why it scored so."""

    score: float
    weight: float
    reasons: tuple[str, ...] = ()

    @property
    def contribution(self) -> float:
        """What this factor alone would make the composite score: ``score * weight``."""
        return self.score * self.weight

    def as_dict(self) -> dict[str, Any]:
        return {"score": rounded(self.score), "weight": self.weight, "reasons": list(self.reasons)}


def rounded(score: float) -> float:
    """``round(score, 2)``, skipping the costly decimal rounding of whole numbers (which it
    leaves unchanged): most factor scores are."""
    return score if type(score) is float and score.is_integer() else round(score, 2)


class RiskAssessment(NamedTuple):
    """The composite ``score`` (0-100), the per-factor breakdown and the leading reasons.

    ``reasons`` lists ``"<factor>: <reason>"`` for every factor that scored, the largest
    contribution first.
    """

    score: float
    factors: dict[str, FactorScore]
    reasons: tuple[str, ...] = ()

    def factor_scores(self) -> dict[str, float]:
        """``{factor: score}`` -- the policy engine's ``risk_factors`` (``risk.factors.<name>``)."""
        return {name: f.score for name, f in self.factors.items()}

    def breakdown(self) -> dict[str, Any]:
        """A JSON-ready copy for audit entries and ``_meta``: score, factors and reasons."""
        return {
            "score": rounded(self.score),
            "factors": {name: f.as_dict() for name, f in self.factors.items()},
            "reasons": list(self.reasons),
        }
