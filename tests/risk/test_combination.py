"""Factors combine by noisy-OR: weights matter, one strong factor dominates, moderate ones compound."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mcp_guard.decision import Decision
from mcp_guard.findings import Severity
from mcp_guard.risk import FactorScore, RiskConfig, RiskThresholds, merge, noisy_or
from tests.risk.helpers import call, finding, scorer


def test_a_single_factor_contributes_score_times_weight() -> None:
    assert noisy_or([FactorScore(100, 0.95), FactorScore(0, 0.5)]) == 95.0


def test_moderate_factors_compound_above_each_contribution() -> None:
    combined = noisy_or([FactorScore(80, 0.5), FactorScore(80, 0.5)])
    assert combined == 64.0  # 1 - 0.6 * 0.6


def test_the_composite_never_exceeds_100_nor_falls_below_the_top_contribution() -> None:
    factors = [FactorScore(100, 1.0), FactorScore(100, 1.0), FactorScore(30, 0.2)]
    assert noisy_or(factors) == 100.0
    assert noisy_or([FactorScore(40, 0.5), FactorScore(10, 0.1)]) >= 20.0


def test_merge_keeps_the_top_sub_signal_and_spills_the_rest() -> None:
    assert merge([70, 40], 0.25) == 80.0
    assert merge([], 0.25) == 0.0
    assert merge([90, 90, 90], 0.25) == 100.0


def test_raising_a_weight_raises_the_score_for_the_same_call() -> None:
    inp = call(findings=[finding("US_SSN", "pii", Severity.HIGH)])
    low = scorer(RiskConfig.model_validate({"weights": {"payload": 0.3}})).score(inp)
    high = scorer(RiskConfig.model_validate({"weights": {"payload": 0.9}})).score(inp)
    assert high.score > low.score
    assert high.factors["payload"].weight == 0.9


def test_weights_outside_zero_to_one_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"weights\.threat"):
        RiskConfig.model_validate({"weights": {"threat": 1.5}})


def test_unknown_configuration_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="colour"):
        RiskConfig.model_validate({"weights": {"colour": 1}})


def test_every_assessment_carries_all_seven_factors_and_a_json_breakdown() -> None:
    a = scorer().score(call(actions={"delete"}, environment="prod"))
    assert list(a.factors) == [
        "action",
        "payload",
        "temporal",
        "environment",
        "behaviour",
        "correlation",
        "threat",
    ]
    data = a.breakdown()
    assert data["factors"]["action"] == {
        "score": 70.0,
        "weight": 0.5,
        "reasons": ["action class 'delete' (70)"],
    }
    assert a.factor_scores()["environment"] == 40.0
    assert a.reasons[0] == "action: action class 'delete' (70)"


def test_reasons_list_the_largest_contribution_first() -> None:
    a = scorer().score(
        call(actions={"read"}, findings=[finding("PROMPT_INJECTION", "injection", Severity.CRITICAL)])
    )
    assert a.reasons[0].startswith("threat: PROMPT_INJECTION")


@pytest.mark.parametrize(
    ("score", "decision"),
    [
        (0, Decision.ALLOW),
        (49.99, Decision.ALLOW),
        (50, Decision.WARN),
        (69.9, Decision.WARN),
        (70, Decision.APPROVAL_REQUIRED),
        (89.99, Decision.APPROVAL_REQUIRED),
        (90, Decision.BLOCK),
        (100, Decision.BLOCK),
    ],
)
def test_default_thresholds_map_scores_to_decisions(score: float, decision: Decision) -> None:
    assert RiskThresholds().decision(score) is decision


def test_thresholds_are_configurable_and_can_be_disabled() -> None:
    t = RiskThresholds(block=None, approval=60, warn=30, monitor=10)
    assert t.decision(99) is Decision.APPROVAL_REQUIRED
    assert t.decision(35) is Decision.WARN
    assert t.decision(12) is Decision.MONITOR_ONLY
    assert t.decision(5) is Decision.ALLOW
    assert t.as_mapping() == {
        Decision.APPROVAL_REQUIRED: 60,
        Decision.WARN: 30,
        Decision.MONITOR_ONLY: 10,
    }


def test_thresholds_must_not_decrease_with_severity() -> None:
    with pytest.raises(ValidationError, match="threshold 'block' \\(60\\) is below 'approval' \\(70\\)"):
        RiskThresholds(block=60)


def test_the_scorer_applies_its_configured_thresholds() -> None:
    s = scorer(RiskConfig(thresholds=RiskThresholds(block=95, approval=90, warn=20)))
    a = s.score(call(actions={"delete"}, environment="prod"))
    assert 20 <= a.score < 90
    assert s.decision(a) is Decision.WARN


def test_the_scorer_combines_its_factors_by_noisy_or() -> None:
    a = scorer().score(
        call(actions={"delete"}, environment="prod", findings=[finding("US_SSN", "pii", Severity.HIGH)])
    )
    assert a.score == noisy_or(a.factors.values())
    assert a.score > max(f.contribution for f in a.factors.values())
