"""The finance example from the design brief, exactly as written."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mcp_guard.decision import Decision
from mcp_guard.policy import PolicySet

from .helpers import finding, load, request, who

FINANCE = """
# policies/finance.yaml
rules:
  - id: block-ssn
    description: Never send US social security numbers to any tool
    priority: 10
    match: {tools: ["*"]}
    when:
      findings: {any: [US_SSN]}
    decision: BLOCK
  - id: refund-needs-approval
    description: Refunds over $1,000 need a human unless the caller is a finance admin
    priority: 20
    scope: {team: finance}
    match: {tools: ["bank__refund"]}
    when:
      args.amount: {gt: 1000}
      principal.roles: {not_contains: finance-admin}
    decision: APPROVAL_REQUIRED
  - id: interns-office-hours
    priority: 30
    scope: {role: intern}
    match: {actions: [write, delete]}
    when:
      time: {outside: "08:00-20:00", days: "mon-fri", tz: "Europe/Berlin"}
    decision: BLOCK
"""
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def finance(tmp_path: Path) -> PolicySet:
    return load(tmp_path, FINANCE, "finance.yaml")


def test_the_example_loads_without_warnings(finance: PolicySet) -> None:
    assert [r.id for r in finance.rules] == ["block-ssn", "refund-needs-approval", "interns-office-hours"]
    assert finance.warnings == []


def test_a_refund_over_1000_by_finance_staff_needs_approval(finance: PolicySet) -> None:
    result = finance.evaluate(request(principal=who(teams=["finance"]), args={"amount": 1500}))
    assert result.decision is Decision.APPROVAL_REQUIRED
    assert result.verdict.rules == ("refund-needs-approval",)
    assert result.matched == ("refund-needs-approval",)
    assert "finance admin" in result.verdict.reason


def test_a_finance_admin_refund_over_1000_is_allowed(finance: PolicySet) -> None:
    p = who(teams=["finance"], roles=["finance-admin"])
    result = finance.evaluate(request(principal=p, args={"amount": 1500}))
    assert result.decision is Decision.ALLOW
    assert result.matched == ()


def test_a_refund_by_someone_outside_finance_is_not_held(finance: PolicySet) -> None:
    result = finance.evaluate(request(principal=who(teams=["support"]), args={"amount": 1500}))
    assert result.decision is Decision.ALLOW


def test_a_refund_of_exactly_1000_is_not_held(finance: PolicySet) -> None:
    result = finance.evaluate(request(principal=who(teams=["finance"]), args={"amount": 1000}))
    assert result.decision is Decision.ALLOW


def test_an_ssn_blocks_any_tool_and_outranks_the_approval(finance: PolicySet) -> None:
    req = request(principal=who(teams=["finance"]), args={"amount": 1500}, findings=[finding("US_SSN")])
    result = finance.evaluate(req)
    assert result.decision is Decision.BLOCK
    assert result.verdict.rules == ("block-ssn",)
    assert result.matched == ("block-ssn", "refund-needs-approval")
    assert (
        finance.evaluate(request("mail__send_email", findings=[finding("US_SSN")])).decision is Decision.BLOCK
    )


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 1, 5, 7, 59, tzinfo=BERLIN), Decision.BLOCK),  # Monday before hours
        (datetime(2026, 1, 5, 8, 0, tzinfo=BERLIN), Decision.ALLOW),
        (datetime(2026, 1, 5, 19, 59, tzinfo=BERLIN), Decision.ALLOW),
        (datetime(2026, 1, 5, 20, 0, tzinfo=BERLIN), Decision.BLOCK),
        (datetime(2026, 1, 10, 12, 0, tzinfo=BERLIN), Decision.BLOCK),  # Saturday
    ],
)
def test_interns_may_write_only_in_berlin_office_hours(
    finance: PolicySet, local: datetime, expected: Decision
) -> None:
    req = request("files__write_file", who(roles=["intern"]), actions=["write"], now=local)
    assert finance.evaluate(req).decision is expected


def test_interns_may_read_outside_office_hours(finance: PolicySet) -> None:
    late = datetime(2026, 1, 5, 23, 0, tzinfo=BERLIN)
    req = request("files__read_file", who(roles=["intern"]), actions=["read"], now=late)
    assert finance.evaluate(req).decision is Decision.ALLOW
