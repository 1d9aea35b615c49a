"""The risk scorer: seven factors, each 0-100 with a weight, combined by noisy-OR.

Scoring is pure and synchronous: it reads the call, the in-memory baseline and the
session state, and takes the time as an input (``RiskInput.now``). It never awaits and
never touches the disk. docs/risk.md is the reference.
"""

from __future__ import annotations

from datetime import UTC

from mcp_guard.decision import Decision
from mcp_guard.risk.action_factor import ActionFactor
from mcp_guard.risk.baseline_store import BaselineStore
from mcp_guard.risk.behaviour_factor import BehaviourFactor
from mcp_guard.risk.combine import composite
from mcp_guard.risk.config import RiskConfig
from mcp_guard.risk.correlation_factor import CorrelationFactor
from mcp_guard.risk.environment_factor import EnvironmentFactor
from mcp_guard.risk.findings_factor import FindingsFactor
from mcp_guard.risk.model import (
    ACTION,
    BEHAVIOUR,
    CORRELATION,
    ENVIRONMENT,
    PAYLOAD,
    TEMPORAL,
    THREAT,
    FactorScore,
    RiskAssessment,
    RiskInput,
)
from mcp_guard.risk.temporal_factor import TemporalFactor
from mcp_guard.sessions.shape import argument_shape

_COMPOSITES_LIMIT = 1024


class RiskScorer:
    """Scores calls against ``config``, reading per-agent baselines from ``baselines``."""

    def __init__(self, config: RiskConfig | None = None, baselines: BaselineStore | None = None) -> None:
        self.config = config or RiskConfig()
        self.baselines = baselines if baselines is not None else BaselineStore(self.config.baseline)
        cfg = self.config
        w = cfg.weights
        self._action = ActionFactor(cfg.action, w.action)
        self._payload = FindingsFactor(cfg.payload, w.payload)
        self._temporal = TemporalFactor(cfg.temporal, w.temporal)
        self._environment = EnvironmentFactor(cfg.environment, cfg.spill, w.environment)
        self._behaviour = BehaviourFactor(cfg.behaviour, cfg.spill, w.behaviour)
        self._correlation = CorrelationFactor(cfg.correlation, cfg.spill, w.correlation)
        self._threat = FindingsFactor(cfg.threat, w.threat)
        self._composites: dict[tuple[FactorScore, ...], tuple[float, tuple[str, ...]]] = {}
        """The seven factors (by value, in breakdown order) -> :func:`composite` of them.
        Never stale: the key is everything the composite is computed from (each factor's
        score, weight and reasons). Calls of a steady workload score the same factors again
        and again. Bounded: cleared when it holds ``_COMPOSITES_LIMIT`` entries."""

    def score(self, inp: RiskInput) -> RiskAssessment:
        """The composite score of one call with its per-factor breakdown."""
        now = inp.now if inp.now.tzinfo is not None else inp.now.replace(tzinfo=UTC)
        ts = now.timestamp()
        baseline = self.baselines.get(inp.principal)
        warm = self._behaviour.warm(baseline)
        shape = ""  # read only once the baseline is warm
        if warm:
            shape = inp.shape if inp.shape is not None else argument_shape(inp.arguments)
        factors = {
            ACTION: self._action.score(inp.actions),
            PAYLOAD: self._payload.score(inp.findings),
            TEMPORAL: self._temporal.score(now, ts, baseline if warm else None),
            ENVIRONMENT: self._environment.score(inp.environment, inp.arguments),
            BEHAVIOUR: self._behaviour.score(inp.tool, shape, baseline, inp.session, ts),
            CORRELATION: self._correlation.score(
                inp.tool,
                inp.actions,
                session=inp.session,
                workflow=inp.workflow,
                principal_session=inp.principal_session,
                ts=ts,
            ),
            THREAT: self._threat.score(inp.findings),
        }
        key = tuple(factors.values())
        combined = self._composites.get(key)
        if combined is None:
            combined = composite(factors)
            if len(self._composites) >= _COMPOSITES_LIMIT:
                self._composites.clear()
            self._composites[key] = combined
        score, reasons = combined
        return RiskAssessment(score, factors, reasons)

    def decision(self, assessment: RiskAssessment) -> Decision:
        """What the configured thresholds say about ``assessment``."""
        return self.config.thresholds.decision(assessment.score)
