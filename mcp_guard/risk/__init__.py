"""The 7-factor risk score (0-100, explainable) and the per-agent behavioural baselines.

    baselines = BaselineStore(config.baseline, path="state/baselines.sqlite3")
    await baselines.load()
    scorer = RiskScorer(config, baselines)
    assessment = scorer.score(RiskInput(principal, tool, upstream, actions, environment,
                                        arguments, findings, session, now))
    config.thresholds.decision(assessment.score)      # -> Decision
    baselines.observe(principal, tool, now, arguments=arguments)   # forwarded calls only
    await baselines.flush()                            # write-behind

docs/risk.md is the reference.
"""

from mcp_guard.risk.baseline import AgentBaseline, BaselineConfig, hour_of_week
from mcp_guard.risk.baseline_store import BaselineStore, open_baseline_store
from mcp_guard.risk.combine import merge, noisy_or
from mcp_guard.risk.config import (
    ActionConfig,
    BehaviourConfig,
    BusinessHours,
    CorrelationConfig,
    EnvironmentConfig,
    FactorWeights,
    FindingsConfig,
    RiskConfig,
    TemporalConfig,
)
from mcp_guard.risk.model import FACTORS, FactorScore, RiskAssessment, RiskInput
from mcp_guard.risk.scorer import RiskScorer
from mcp_guard.risk.thresholds import RiskThresholds

__all__ = [
    "FACTORS",
    "ActionConfig",
    "AgentBaseline",
    "BaselineConfig",
    "BaselineStore",
    "BehaviourConfig",
    "BusinessHours",
    "CorrelationConfig",
    "EnvironmentConfig",
    "FactorScore",
    "FactorWeights",
    "FindingsConfig",
    "RiskAssessment",
    "RiskConfig",
    "RiskInput",
    "RiskScorer",
    "RiskThresholds",
    "TemporalConfig",
    "hour_of_week",
    "merge",
    "noisy_or",
    "open_baseline_store",
]
