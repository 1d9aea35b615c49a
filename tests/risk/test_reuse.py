"""What the scorer works out once and reuses from call to call stays right.

Per-call work is cut by remembering what depends on the configuration alone (a tool's
role in the correlation patterns, an environment's score) and the composite of seven
factor scores; these tests change exactly what each remembered value is keyed by and
check the answers follow.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from mcp_guard.decision import Decision
from mcp_guard.risk import BaselineConfig, BaselineStore, CorrelationConfig, EnvironmentConfig, RiskConfig
from mcp_guard.risk import scorer as scorer_module
from mcp_guard.risk.combine import composite, noisy_or
from mcp_guard.sessions import CallRecord
from tests.risk.helpers import ALICE, BOB, MONDAY_10, call, finding, scorer, sessions, warm_up


def test_each_principal_gets_its_own_baseline_whoever_was_scored_before() -> None:
    baselines = BaselineStore()
    warm_up(baselines, ALICE)
    s = scorer(baselines=baselines)

    alice = s.score(call(principal=ALICE)).factors["behaviour"]
    bob = s.score(call(principal=BOB)).factors["behaviour"]
    alice_again = s.score(call(principal=ALICE.model_copy())).factors["behaviour"]

    assert alice.reasons == alice_again.reasons == ()
    assert bob.reasons == ("baseline warming up (0/50 calls): muted",)


def test_baseline_keys_follow_the_principal_asked_about() -> None:
    by_agent = BaselineStore(BaselineConfig(key="agent"))
    assert [by_agent.key_for(p) for p in (ALICE, BOB, ALICE)] == ["|agent:invoice-bot"] * 3
    by_principal = BaselineStore()
    assert [by_principal.key_for(p) for p in (ALICE, BOB, ALICE)] == [
        "alice|invoice-bot",
        "bob|invoice-bot",
        "alice|invoice-bot",
    ]


def test_sink_tool_globs_are_matched_per_tool_whatever_tool_with_the_same_classes_came_before() -> None:
    s = scorer(RiskConfig(correlation=CorrelationConfig(sink_tools=("slack__*",))))
    session = sessions().get("s", ALICE)
    session.record_result_findings("crm__get", [finding("US_SSN", "pii")], MONDAY_10 - timedelta(seconds=5))

    def correlation(tool: str) -> float:
        return s.score(call(tool, {"write"}, session=session)).factors["correlation"].score

    assert [correlation(t) for t in ("slack__post", "crm__update", "slack__post", "crm__update")] == [
        90,
        0,
        90,
        0,
    ]


def test_the_same_tool_with_other_action_classes_is_judged_by_those() -> None:
    session = sessions().get("s", ALICE)
    session.record_result_findings("crm__get", [finding("US_SSN", "pii")], MONDAY_10 - timedelta(seconds=5))
    s = scorer()

    def correlation(*actions: str) -> float:
        return s.score(call("x__do", actions, session=session)).factors["correlation"].score

    assert [correlation("read"), correlation("external"), correlation("read")] == [0, 90, 0]


def test_repeated_blocks_across_connections_raise_a_call_that_neither_sends_acts_nor_deletes() -> None:
    store = sessions()
    connection, everywhere = store.get("conn-1", ALICE), store.of_principal(ALICE)
    for n in range(3):
        everywhere.record_call(
            CallRecord("db__drop", MONDAY_10 - timedelta(seconds=30 * n), decision=Decision.BLOCK)
        )
    s = scorer()
    reading = call(session=connection, principal_session=everywhere)
    alone = call(session=connection)

    assert s.score(reading).factors["correlation"].reasons == (
        "across connections: 3 blocked calls in the last 600 s",
    )
    assert s.score(alone).factors["correlation"].score == 0
    assert s.score(reading).factors["correlation"].score == 60


def test_the_environment_is_scored_per_environment_and_targets_per_call() -> None:
    s = scorer(RiskConfig(environment=EnvironmentConfig(internal_domains=frozenset({"corp.example"}))))

    def environment(
        name: str | None, arguments: dict[str, str] | None = None
    ) -> tuple[float, tuple[str, ...]]:
        factor = s.score(call(environment=name, arguments=arguments)).factors["environment"]
        return factor.score, factor.reasons

    prod = environment("prod")
    assert prod == (40, ("environment 'prod' (40)",))
    assert environment("staging") == (15, ("environment 'staging' (15)",))
    assert environment(None) == (25, ("environment not configured (25)",))
    assert environment("prod", {"to": "eve@evil.example"}) == (
        70,  # 60 for the outside recipient + 0.25 * 40
        ("environment 'prod' (40)", "external recipient domain: evil.example"),
    )
    assert environment("prod", {"to": "bob@corp.example"}) == prod
    assert environment("local") == (0, ())


def test_calls_whose_factors_score_alike_keep_their_own_reasons() -> None:
    s = scorer()
    lower = s.score(call(environment="prod"))
    upper = s.score(call(environment="PROD"))
    assert lower.score == upper.score
    assert "environment: environment 'prod' (40)" in lower.reasons
    assert "environment: environment 'PROD' (40)" in upper.reasons


def test_remembered_composites_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "_COMPOSITES_LIMIT", 2)
    s = scorer()
    for environment in ("prod", "staging", "dev", "qa", "prod", "staging"):
        a = s.score(call(environment=environment))
        assert (a.score, a.reasons) == composite(a.factors)
        assert a.score == noisy_or(a.factors.values())
        assert f"environment: environment '{environment}' (" in " ".join(a.reasons)
        assert len(s._composites) <= 2
