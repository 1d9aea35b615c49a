"""The worked examples of docs/risk.md, pinned: if a default changes, the docs must change too."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mcp_guard.decision import Decision
from mcp_guard.findings import Severity
from mcp_guard.risk import BaselineStore, EnvironmentConfig, RiskConfig, RiskInput
from tests.risk.helpers import ALICE, MONDAY_10, SUNDAY_03, call, finding, scorer, sessions, warm_up

CONFIG = RiskConfig(environment=EnvironmentConfig(internal_domains=frozenset({"corp.example"})))
MAIL = {"to": "partner@vendor.example", "subject": "Q4"}


def _tainted_session_call() -> RiskInput:
    session = sessions().get("s", ALICE)
    session.record_result_findings(
        "crm__get_customer", [finding("US_SSN", "pii", Severity.HIGH)], MONDAY_10 - timedelta(seconds=40)
    )
    return call("mail__send_email", {"external"}, environment="prod", arguments=MAIL, session=session)


EXAMPLES = {
    "read in staging": (call(), 10.7, Decision.ALLOW, True),
    "known delete in prod": (
        call("crm__update_customer", {"delete"}, environment="prod"),
        45.4,
        Decision.ALLOW,
        True,
    ),
    "novel delete on Sunday night": (
        call("fs__delete_file", {"delete"}, environment="prod", now=SUNDAY_03),
        73.03,
        Decision.APPROVAL_REQUIRED,
        True,
    ),
    "SSN in a write": (
        call("crm__update_customer", {"write"}, findings=[finding("US_SSN", "pii")]),
        66.91,
        Decision.WARN,
        True,
    ),
    "private key in a write": (
        call(
            "crm__update_customer", {"write"}, findings=[finding("PRIVATE_KEY", "secret", Severity.CRITICAL)]
        ),
        74.81,
        Decision.APPROVAL_REQUIRED,
        True,
    ),
    "critical injection": (
        call(findings=[finding("PROMPT_INJECTION", "injection", Severity.CRITICAL)]),
        95.53,
        Decision.BLOCK,
        True,
    ),
    "external mail, clean session": (
        call(
            "mail__send_email",
            {"external"},
            environment="prod",
            arguments=MAIL,
            session=sessions().get("c", ALICE),
        ),
        49.6,
        Decision.ALLOW,
        False,
    ),
    "external mail after an SSN in a result": (_tainted_session_call(), 90.42, Decision.BLOCK, False),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_worked_example(name: str) -> None:
    inp, expected, decision, warm = EXAMPLES[name]
    baselines = BaselineStore()
    if warm:
        warm_up(baselines)
    s = scorer(CONFIG, baselines)
    a = s.score(inp)
    assert a.score == pytest.approx(expected, abs=0.01)
    assert s.decision(a) is decision
