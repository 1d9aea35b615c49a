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


def _factor(result: tuple[float, tuple[str, ...]], weight: float) -> FactorScore:
    return FactorScore(result[0], weight, result[1])


class RiskScorer:
    """Scores calls against ``config``, reading per-agent baselines from ``baselines``."""

    def __init__(self, config: RiskConfig | None = None, baselines: BaselineStore | None = None) -> None:
        self.config = config or RiskConfig()
        self.baselines = baselines if baselines is not None else BaselineStore(self.config.baseline)
        cfg = self.config
        w = cfg.weights
        self._weights = (w.action, w.payload, w.temporal, w.environment, w.behaviour, w.correlation, w.threat)
        self._action = ActionFactor(cfg.action)
        self._payload = FindingsFactor(cfg.payload)
        self._temporal = TemporalFactor(cfg.temporal, cfg.behaviour.warmup_calls)
        self._environment = EnvironmentFactor(cfg.environment, cfg.spill)
        self._behaviour = BehaviourFactor(cfg.behaviour, cfg.spill)
        self._correlation = CorrelationFactor(cfg.correlation, cfg.spill)
        self._threat = FindingsFactor(cfg.threat)

    def score(self, inp: RiskInput) -> RiskAssessment:
        """The composite score of one call with its per-factor breakdown."""
        w = self._weights
        now = inp.now if inp.now.tzinfo is not None else inp.now.replace(tzinfo=UTC)
        ts = now.timestamp()
        baseline = self.baselines.get(inp.principal)
        if self._behaviour.warm(baseline):
            shape = inp.shape if inp.shape is not None else argument_shape(inp.arguments)
        else:
            shape = ""
        correlation = self._correlation.score(
            inp.tool,
            inp.actions,
            session=inp.session,
            workflow=inp.workflow,
            principal_session=inp.principal_session,
            now=now,
            ts=ts,
        )
        factors = {
            ACTION: _factor(self._action.score(inp.actions), w[0]),
            PAYLOAD: _factor(self._payload.score(inp.findings), w[1]),
            TEMPORAL: _factor(self._temporal.score(now, ts, baseline), w[2]),
            ENVIRONMENT: _factor(self._environment.score(inp.environment, inp.arguments), w[3]),
            BEHAVIOUR: _factor(self._behaviour.score(inp.tool, shape, baseline, inp.session, now), w[4]),
            CORRELATION: _factor(correlation, w[5]),
            THREAT: _factor(self._threat.score(inp.findings), w[6]),
        }
        # noisy-OR (combine.noisy_or), inlined to rank contributions in the same pass
        remaining = 1.0
        ranked: list[tuple[float, str]] = []
        for name, f in factors.items():
            p = f.score * f.weight / 100.0
            if p > 0.0:
                remaining *= 1.0 - min(1.0, p)
                ranked.append((p, name))
        ranked.sort(reverse=True)
        reasons = tuple(f"{name}: {r}" for _, name in ranked for r in factors[name].reasons)
        return RiskAssessment(score=round(100.0 * (1.0 - remaining), 2), factors=factors, reasons=reasons)

    def decision(self, assessment: RiskAssessment) -> Decision:
        """What the configured thresholds say about ``assessment``."""
        return self.config.thresholds.decision(assessment.score)
