"""Cross-request correlation: taint then sink, injection then action, delete bursts, repeated blocks."""

from __future__ import annotations

from datetime import timedelta

from mcp_guard.decision import Decision
from mcp_guard.findings import Severity
from mcp_guard.risk import CorrelationConfig, EnvironmentConfig, RiskConfig, RiskInput
from mcp_guard.sessions import CallRecord, Session
from tests.risk.helpers import ALICE, MONDAY_10, call, finding, scorer, sessions

MAIL_ARGS = {"to": "partner@vendor.example", "body": "see attached"}


def _send(session: Session | None, workflow: Session | None = None) -> RiskInput:
    """``mail__send_email`` (action class external) in production to an outside recipient."""
    return call(
        "mail__send_email",
        {"external"},
        arguments=MAIL_ARGS,
        environment="prod",
        session=session,
        workflow=workflow,
    )


def test_pii_in_a_result_then_an_external_send_in_the_same_session_is_high() -> None:
    s = scorer(RiskConfig(environment=EnvironmentConfig(internal_domains=frozenset({"corp.example"}))))
    store = sessions()
    tainted, clean = store.get("tainted", ALICE), store.get("clean", ALICE)
    ssn = finding("US_SSN", "pii", Severity.HIGH, "$.content[0].text")
    tainted.record_result_findings("crm__get_customer", [ssn], MONDAY_10 - timedelta(seconds=40))

    hot = s.score(_send(tainted))
    cold = s.score(_send(clean))

    assert hot.factors["correlation"].score == 90
    assert hot.factors["correlation"].reasons == (
        "result of crm__get_customer carried US_SSN (high) 40 s ago; this call sends data out",
    )
    assert cold.factors["correlation"].score == 0
    assert s.decision(hot) is Decision.BLOCK
    assert s.decision(cold) is Decision.ALLOW


def test_a_secret_in_a_result_scores_the_secret_taint_score() -> None:
    store = sessions()
    session = store.get("s", ALICE)
    session.record_result_findings(
        "vault__read",
        [finding("AWS_SECRET_KEY", "secret", Severity.MEDIUM)],
        MONDAY_10 - timedelta(minutes=5),
    )
    assert scorer().score(_send(session)).factors["correlation"].score == 95


def test_taint_outside_the_window_is_forgotten() -> None:
    store = sessions()
    session = store.get("s", ALICE)
    session.record_result_findings("crm__get", [finding("US_SSN", "pii")], MONDAY_10 - timedelta(hours=1))
    assert scorer().score(_send(session)).factors["correlation"].score == 0


def test_a_tainted_session_does_not_raise_a_call_that_is_not_a_sink() -> None:
    store = sessions()
    session = store.get("s", ALICE)
    session.record_result_findings("crm__get", [finding("US_SSN", "pii")], MONDAY_10 - timedelta(seconds=5))
    assert scorer().score(call("crm__update", {"write"}, session=session)).factors["correlation"].score == 0


def test_configured_sink_tools_count_as_sinks_whatever_their_classes() -> None:
    s = scorer(RiskConfig(correlation=CorrelationConfig(sink_tools=("slack__*",))))
    store = sessions()
    session = store.get("s", ALICE)
    session.record_result_findings("crm__get", [finding("US_SSN", "pii")], MONDAY_10 - timedelta(seconds=5))
    assert s.score(call("slack__post", {"write"}, session=session)).factors["correlation"].score == 90


def test_an_injection_seen_in_a_result_raises_a_following_call_that_can_act() -> None:
    store = sessions()
    session = store.get("s", ALICE)
    session.record_result_findings(
        "web__fetch", [finding("PROMPT_INJECTION", "injection")], MONDAY_10 - timedelta(seconds=12)
    )
    s = scorer()
    acting = s.score(call("shell__run", {"execute"}, session=session)).factors["correlation"]
    reading = s.score(call("crm__get", {"read"}, session=session)).factors["correlation"]
    assert acting.score == 70
    assert acting.reasons == (
        "result of web__fetch carried PROMPT_INJECTION 12 s ago; this call can act (execute)",
    )
    assert reading.score == 0


def test_many_reads_then_a_sink_look_like_exfiltration() -> None:
    store = sessions()
    session = store.get("s", ALICE)
    for n in range(6):
        session.record_call(
            CallRecord(
                "crm__get_customer", MONDAY_10 - timedelta(seconds=10 * n), actions=frozenset({"read"})
            )
        )
    factor = scorer().score(_send(session)).factors["correlation"]
    assert factor.score == 60  # 45 + 5 per read beyond 3
    assert factor.reasons == ("6 reads in the last 300 s, then a sink",)


def test_blocked_reads_do_not_count_towards_exfiltration() -> None:
    store = sessions()
    session = store.get("s", ALICE)
    for n in range(6):
        session.record_call(
            CallRecord(
                "crm__get",
                MONDAY_10 - timedelta(seconds=n),
                actions=frozenset({"read"}),
                decision=Decision.BLOCK,
            )
        )
    factor = scorer().score(_send(session)).factors["correlation"]
    assert "reads" not in " ".join(factor.reasons)


def test_a_burst_of_deletes_raises_the_correlation_factor() -> None:
    store = sessions()
    slow, fast = store.get("slow", ALICE), store.get("fast", ALICE)
    for n in range(6):
        rec = CallRecord(
            "fs__delete_file", MONDAY_10 - timedelta(seconds=5 * (n + 1)), actions=frozenset({"delete"})
        )
        fast.record_call(rec)
        slow.record_call(
            CallRecord(
                "fs__delete_file", MONDAY_10 - timedelta(minutes=5 * (n + 1)), actions=frozenset({"delete"})
            )
        )
    s = scorer()
    burst = s.score(call("fs__delete_file", {"delete"}, session=fast)).factors["correlation"]
    spread = s.score(call("fs__delete_file", {"delete"}, session=slow)).factors["correlation"]
    assert burst.score == 85  # 7 deletes within 60 s: 75 + 2 * 5
    assert burst.reasons == ("delete burst: 7 deletes within 60 s",)
    assert spread.score == 0


def test_repeated_blocked_attempts_raise_every_following_call() -> None:
    store = sessions()
    session = store.get("s", ALICE)
    for n in range(4):
        session.record_call(
            CallRecord("db__drop", MONDAY_10 - timedelta(seconds=30 * n), decision=Decision.BLOCK)
        )
    factor = scorer().score(call(session=session)).factors["correlation"]
    assert factor.score == 70  # 60 + 10 for the fourth
    assert factor.reasons == ("4 blocked calls in the last 600 s",)


def test_the_workflow_session_is_correlated_too() -> None:
    store = sessions()
    session = store.get("conn-2", ALICE)
    workflow = store.workflow("wf-42", ALICE)
    workflow.record_result_findings("crm__get", [finding("US_SSN", "pii")], MONDAY_10 - timedelta(seconds=5))
    factor = scorer().score(_send(session, workflow=workflow)).factors["correlation"]
    assert factor.score == 90
    assert factor.reasons[0].startswith("workflow: result of crm__get carried US_SSN")


def test_without_a_session_correlation_is_zero() -> None:
    assert scorer().score(_send(None)).factors["correlation"].score == 0
