"""Each factor moves the composite score in the right direction and says why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mcp_guard.findings import Severity
from mcp_guard.risk import EnvironmentConfig, RiskConfig
from tests.risk.helpers import MONDAY_10, SUNDAY_03, call, finding, scorer


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("read", "write"),
        ("write", "external"),
        ("external", "delete"),
        ("delete", "execute"),
        ("execute", "privileged"),
    ],
)
def test_more_severe_action_classes_score_higher(lower: str, higher: str) -> None:
    s = scorer()
    low = s.score(call(actions={lower}))
    high = s.score(call(actions={higher}))
    assert high.factors["action"].score > low.factors["action"].score
    assert high.score > low.score
    assert f"action class '{higher}'" in high.factors["action"].reasons[0]


def test_a_tool_with_several_risky_classes_scores_above_its_worst_class() -> None:
    s = scorer()
    alone = s.score(call(actions={"delete"})).factors["action"].score
    combined = s.score(call(actions={"write", "delete", "external"})).factors["action"].score
    assert combined > alone


def test_an_unclassified_tool_scores_as_configured() -> None:
    assessment = scorer().score(call(actions=()))
    assert assessment.factors["action"].score == 50
    assert "unclassified" in assessment.factors["action"].reasons[0]


def test_an_ssn_in_the_arguments_raises_payload_sensitivity_and_names_it() -> None:
    s = scorer()
    clean = s.score(call())
    ssn = s.score(call(findings=[finding("US_SSN", "pii", Severity.HIGH, "$.note")]))
    assert clean.factors["payload"].score == 0
    assert ssn.factors["payload"].score == 80
    assert ssn.score > clean.score
    assert ssn.factors["payload"].reasons == ("US_SSN (80) at $.note",)


def test_a_private_key_scores_above_an_email_address() -> None:
    s = scorer()
    email = s.score(call(findings=[finding("EMAIL", "pii", Severity.LOW)]))
    key = s.score(call(findings=[finding("PRIVATE_KEY", "secret", Severity.CRITICAL)]))
    assert key.factors["payload"].score > email.factors["payload"].score
    assert key.score > email.score


def test_repeated_findings_add_a_capped_bonus() -> None:
    s = scorer()
    one = s.score(call(findings=[finding("IBAN", "pii", Severity.MEDIUM)])).factors["payload"]
    many = s.score(call(findings=[finding("IBAN", "pii", Severity.MEDIUM)] * 20)).factors["payload"]
    assert one.score == 60
    assert many.score == 80  # 60 + the 20-point cap
    assert many.reasons[0] == "20x IBAN (60) at $.note"


def test_threat_findings_feed_the_threat_factor_not_payload() -> None:
    s = scorer()
    a = s.score(call(findings=[finding("PROMPT_INJECTION", "injection", Severity.HIGH)]))
    assert a.factors["payload"].score == 0
    assert a.factors["threat"].score == 85
    assert a.factors["threat"].reasons == ("PROMPT_INJECTION (85) at $.note",)


def test_a_critical_threat_alone_reaches_block() -> None:
    s = scorer()
    a = s.score(call(findings=[finding("SQL_INJECTION", "attack", Severity.CRITICAL)]))
    assert a.score >= 95
    assert s.decision(a).value == "BLOCK"


def test_outside_business_hours_raises_the_temporal_factor_before_warm_up() -> None:
    s = scorer()
    day = s.score(call(now=MONDAY_10))
    night = s.score(call(now=SUNDAY_03))
    assert day.factors["temporal"].score == 0
    assert night.factors["temporal"].score == 50
    assert night.score > day.score
    assert "outside business hours" in night.factors["temporal"].reasons[0]


def test_business_hours_are_read_in_their_time_zone() -> None:
    config = RiskConfig.model_validate(
        {"temporal": {"business_hours": {"tz": "America/New_York", "start": "09:00", "end": "17:00"}}}
    )
    s = scorer(config)
    # 10:00 UTC is 05:00 in New York.
    assert s.score(call(now=MONDAY_10)).factors["temporal"].score == 50
    assert s.score(call(now=MONDAY_10 + timedelta(hours=5))).factors["temporal"].score == 0


def test_production_scores_above_staging_and_dev() -> None:
    s = scorer()
    dev = s.score(call(environment="dev")).factors["environment"].score
    staging = s.score(call(environment="staging")).factors["environment"].score
    prod = s.score(call(environment="prod")).factors["environment"].score
    assert dev < staging < prod


def test_an_unconfigured_environment_scores_the_unknown_default() -> None:
    a = scorer().score(call(environment=None))
    assert a.factors["environment"].score == 25
    assert a.factors["environment"].reasons == ("environment not configured (25)",)


def test_an_external_email_recipient_raises_the_environment_factor() -> None:
    s = scorer(RiskConfig(environment=EnvironmentConfig(internal_domains=frozenset({"corp.example"}))))
    internal = s.score(call("mail__send_email", {"external"}, arguments={"to": "bob@corp.example"}))
    subdomain = s.score(call("mail__send_email", {"external"}, arguments={"to": ["x@eu.corp.example"]}))
    external = s.score(
        call("mail__send_email", {"external"}, arguments={"to": "Bob <bob@corp.example>, eve@evil.example"})
    )
    assert internal.factors["environment"].score == subdomain.factors["environment"].score
    assert external.factors["environment"].score > internal.factors["environment"].score
    assert "external recipient domain: evil.example" in external.factors["environment"].reasons


def test_a_url_outside_internal_hosts_is_external_and_private_addresses_are_not() -> None:
    s = scorer(RiskConfig(environment=EnvironmentConfig(internal_hosts=frozenset({"corp.example"}))))
    env = "environment"
    inside = s.score(call(arguments={"url": "https://wiki.corp.example/page"})).factors[env]
    private = s.score(call(arguments={"url": "http://10.1.2.3:8080/x"})).factors[env]
    outside = s.score(call(arguments={"nested": {"link": "https://paste.example.net/raw"}})).factors[env]
    assert inside.score == private.score
    assert outside.score > inside.score
    assert "external URL host: paste.example.net" in outside.reasons


def test_a_weight_of_zero_removes_a_factor_from_the_score() -> None:
    base = scorer(RiskConfig.model_validate({"weights": {"environment": 0}}))
    a = base.score(call(environment="prod"))
    b = base.score(call(environment="dev"))
    assert a.score == b.score
    assert a.factors["environment"].score > b.factors["environment"].score


def test_a_naive_time_is_read_as_utc() -> None:
    s = scorer()
    naive = s.score(call(now=SUNDAY_03.replace(tzinfo=None)))
    aware = s.score(call(now=SUNDAY_03))
    assert naive.factors["temporal"] == aware.factors["temporal"]
