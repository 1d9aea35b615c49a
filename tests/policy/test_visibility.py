"""HIDE rules: one decision point for tools/list and tools/call."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.decision import Decision
from mcp_guard.policy import PolicySet, ToolInfo

from .helpers import MONDAY_NOON, load, request, who

POLICY = """
rules:
  - id: admin-only-deletes
    match: {tools: ["db__delete*"]}
    when:
      principal.roles: {not_contains: admin}
    decision: HIDE
  - id: allow-everything-first
    priority: 0
    decision: ALLOW
    override_risk: true
  - id: trial-hide-mail
    match: {upstreams: [mail]}
    decision: HIDE
    shadow: true
"""


@pytest.fixture
def policies(tmp_path: Path) -> PolicySet:
    return load(tmp_path, POLICY)


def test_a_hidden_tool_is_not_listed(policies: PolicySet) -> None:
    tool = ToolInfo("db__delete_records")
    assert policies.visible(who(roles=["analyst"]), tool, MONDAY_NOON) is False
    assert policies.visible(who(roles=["admin"]), tool, MONDAY_NOON) is True
    assert policies.visible(who(), ToolInfo("db__query"), MONDAY_NOON) is True


def test_a_hidden_tool_is_refused_at_call_time_whatever_the_priorities(policies: PolicySet) -> None:
    result = policies.evaluate(request("db__delete_records", who(roles=["analyst"])))
    assert result.hidden is True
    assert result.decision is Decision.BLOCK
    assert result.verdict.rules == ("admin-only-deletes",)
    assert result.verdict.reason.startswith("unknown tool")
    assert result.verdict.details["hidden"] is True


def test_a_shadow_hide_rule_neither_hides_nor_refuses(policies: PolicySet) -> None:
    assert policies.visible(who(), ToolInfo("mail__send_email"), MONDAY_NOON) is True
    result = policies.evaluate(request("mail__send_email"))
    assert result.decision is Decision.ALLOW
    assert result.hidden is False
    assert result.shadow is not None and result.shadow.decision is Decision.BLOCK


def test_hide_rules_may_not_depend_on_call_data(tmp_path: Path) -> None:
    from mcp_guard.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        load(tmp_path, "rules:\n  - id: h\n    when: {args.x: {exists: true}}\n    decision: HIDE\n")
    assert exc.value.problems[0].startswith(f"{tmp_path / 'p.yaml'}:3: ")
    assert "HIDE" in exc.value.problems[0]
