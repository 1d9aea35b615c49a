"""Ordering, specificity, first-match, default, risk combination, shadow mode."""

from __future__ import annotations

from pathlib import Path

from mcp_guard.decision import Decision
from mcp_guard.policy import load_policy_dir

from .helpers import load, request, who, write


def test_the_lowest_priority_number_decides_first(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - {id: late-block, priority: 50, decision: BLOCK}
          - {id: early-allow, priority: 5, decision: ALLOW}
        """,
    )
    result = policies.evaluate(request())
    assert result.decision is Decision.ALLOW
    assert result.deciding_rule == "early-allow"
    assert result.matched == ("early-allow", "late-block")


def test_ties_in_priority_go_to_the_most_specific_scope(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - {id: org, priority: 10, decision: WARN}
          - {id: tenant, priority: 10, scope: {tenant: acme}, decision: MONITOR_ONLY}
          - {id: team, priority: 10, scope: {team: finance}, decision: BLOCK}
          - {id: role, priority: 10, scope: {role: analyst}, decision: APPROVAL_REQUIRED}
          - {id: agent, priority: 10, scope: {agent: copilot}, decision: WARN}
          - {id: user, priority: 10, scope: {user: alice}, decision: ALLOW}
        """,
    )
    p = who("alice", agent="copilot", roles=["analyst"], teams=["finance"], tenant="acme")
    result = policies.evaluate(request(principal=p))
    assert result.matched == ("user", "agent", "role", "team", "tenant", "org")
    assert result.decision is Decision.ALLOW
    bob = who("bob", agent="copilot", roles=["analyst"], teams=["finance"], tenant="acme")
    assert policies.evaluate(request(principal=bob)).deciding_rule == "agent"


def test_equal_priority_and_scope_fall_back_to_file_then_position(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "rules:\n  - {id: b1, decision: BLOCK}\n")
    write(tmp_path, "a.yaml", "rules:\n  - {id: a1, decision: WARN}\n  - {id: a2, decision: BLOCK}\n")
    policies = load_policy_dir(tmp_path)
    assert policies.evaluate(request()).matched == ("a1", "a2", "b1")


def test_scopes_with_several_kinds_need_all_of_them(tmp_path: Path) -> None:
    policies = load(
        tmp_path, "rules:\n  - {id: r, scope: {team: finance, role: [intern, temp]}, decision: BLOCK}\n"
    )
    assert (
        policies.evaluate(request(principal=who(teams=["finance"], roles=["temp"]))).decision
        is Decision.BLOCK
    )
    assert policies.evaluate(request(principal=who(teams=["finance"]))).decision is Decision.ALLOW
    assert policies.evaluate(request(principal=who(roles=["intern"]))).decision is Decision.ALLOW


def test_matches_by_tool_glob_upstream_and_action_class(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - {id: glob, match: {tools: ["db__del*"]}, decision: BLOCK}
          - {id: upstream, match: {upstreams: [mail]}, decision: WARN}
          - {id: action, match: {actions: [external]}, decision: APPROVAL_REQUIRED}
          - {id: both, match: {tools: ["files__*"], actions: [write]}, decision: MONITOR_ONLY}
        """,
    )
    assert policies.evaluate(request("db__delete_records")).deciding_rule == "glob"
    assert policies.evaluate(request("db__query")).deciding_rule is None
    assert policies.evaluate(request("mail__list_inbox")).deciding_rule == "upstream"
    assert policies.evaluate(request("bank__refund", actions=["external"])).deciding_rule == "action"
    assert policies.evaluate(request("files__write_file", actions=["write"])).deciding_rule == "both"
    assert policies.evaluate(request("files__read_file", actions=["read"])).deciding_rule is None


def test_the_default_decision_applies_when_no_rule_matches(tmp_path: Path) -> None:
    policies = load(
        tmp_path, "default: BLOCK\nrules:\n  - {id: ok, match: {tools: [db__query]}, decision: ALLOW}\n"
    )
    result = policies.evaluate(request("db__delete_records"))
    assert result.decision is Decision.BLOCK
    assert result.deciding_rule is None
    assert "default BLOCK" in result.verdict.reason
    assert policies.evaluate(request("db__query")).decision is Decision.ALLOW


def test_without_a_default_unmatched_calls_are_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, "rules: []\n").evaluate(request()).decision is Decision.ALLOW


def test_the_more_severe_of_rule_and_risk_wins(tmp_path: Path) -> None:
    policies = load(tmp_path, "rules:\n  - {id: warn, decision: WARN}\n")
    high = policies.evaluate(request(risk=92))
    assert high.decision is Decision.BLOCK
    assert high.verdict.rules == ("risk-threshold",)
    assert high.risk_decision is Decision.BLOCK
    assert high.matched == ("warn",)
    assert high.verdict.details["source"] == "risk"
    low = policies.evaluate(request(risk=10))
    assert low.decision is Decision.WARN
    assert low.risk_decision is Decision.ALLOW
    assert low.verdict.details["source"] == "rule"


def test_default_risk_thresholds_are_90_70_50(tmp_path: Path) -> None:
    policies = load(tmp_path, "rules: []\n")
    decisions = [policies.evaluate(request(risk=r)).decision for r in (49, 50, 70, 90)]
    assert decisions == [Decision.ALLOW, Decision.WARN, Decision.APPROVAL_REQUIRED, Decision.BLOCK]


def test_risk_thresholds_are_configurable_or_can_be_disabled(tmp_path: Path) -> None:
    policies = load(tmp_path, "risk_thresholds: {BLOCK: 60}\n")
    assert policies.evaluate(request(risk=65)).decision is Decision.BLOCK
    assert policies.evaluate(request(risk=59)).decision is Decision.ALLOW
    off = load(tmp_path, "risk_thresholds: {}\n")
    assert off.evaluate(request(risk=100)).decision is Decision.ALLOW


def test_override_risk_lets_a_trusted_rule_stand(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        "rules:\n  - {id: trusted, scope: {role: sre}, decision: ALLOW, override_risk: true}\n",
    )
    result = policies.evaluate(request(principal=who(roles=["sre"]), risk=99))
    assert result.decision is Decision.ALLOW
    assert result.risk_decision is Decision.BLOCK
    assert any("overridden" in r for r in result.reasons)
    assert policies.evaluate(request(risk=99)).decision is Decision.BLOCK


def test_a_shadow_rule_is_computed_but_not_enforced(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - {id: trial, priority: 1, decision: BLOCK, shadow: true}
          - {id: live, priority: 2, decision: WARN}
        """,
    )
    result = policies.evaluate(request())
    assert result.decision is Decision.WARN
    assert result.shadow is not None
    assert result.shadow.decision is Decision.BLOCK
    assert result.shadow.rules == ("trial",)
    assert result.matched == ("trial", "live")


def test_a_shadow_file_makes_all_its_rules_shadow(tmp_path: Path) -> None:
    write(tmp_path, "live.yaml", "rules:\n  - {id: live, priority: 50, decision: MONITOR_ONLY}\n")
    write(tmp_path, "trial.yaml", "shadow: true\nrules:\n  - {id: trial, priority: 1, decision: BLOCK}\n")
    result = load_policy_dir(tmp_path).evaluate(request())
    assert result.decision is Decision.MONITOR_ONLY
    assert result.shadow is not None and result.shadow.decision is Decision.BLOCK


def test_without_a_matching_shadow_rule_there_is_no_shadow_verdict(tmp_path: Path) -> None:
    policies = load(
        tmp_path, "rules:\n  - {id: trial, match: {tools: [x__y]}, decision: BLOCK, shadow: true}\n"
    )
    assert policies.evaluate(request()).shadow is None


def test_an_approval_rule_exposes_its_approval_block(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - id: held
            decision: APPROVAL_REQUIRED
            approval: {mode: defer, approvers: {roles: [lead], users: [carol]}, allow_self: true, ttl: 2h}
        """,
    )
    result = policies.evaluate(request())
    assert result.approval is not None
    assert result.approval.mode == "defer"
    assert result.approval.approvers.roles == ("lead",)
    assert result.approval.approvers.users == ("carol",)
    assert result.approval.allow_self is True
    assert result.approval.ttl_s == 7200
    assert result.approval.rule_id == "held"
    assert result.approval.line == 4


def test_an_error_inside_evaluation_blocks_the_call(tmp_path: Path) -> None:
    class Broken:
        def count(self, tool_glob: str, within_s: float, now: object) -> int:
            raise RuntimeError("history store down")

    policies = load(tmp_path, "rules:\n  - {id: h, when: {history: {within: 10s}}, decision: WARN}\n")
    result = policies.evaluate(request(history=Broken()))
    assert result.decision is Decision.BLOCK
    assert "history store down" in result.verdict.reason


def test_control_sections_are_handed_over_raw_item_by_item_with_their_lines(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        rules: []
        limits:
          - {id: db-rate, tools: ["db__*"], per: [user], rate: 10/minute}
          - {id: mail-rate, tools: ["mail__*"], rate: 5/minute}
        budgets: {id: daily, period: day, max_cost: 5}
        timeouts: [{tools: ["*"], seconds: 30}]
        breakers: []
        concurrency: [{id: c, max: 4}]
        result_bounds: [{id: r, max_bytes: 1000}]
        """,
    )
    found = [(s.kind, s.line) for s in policies.limit_specs]
    assert found == [
        ("limits", 3),
        ("limits", 4),
        ("budgets", 5),
        ("timeouts", 6),
        ("concurrency", 8),
        ("result_bounds", 9),
    ]
    assert policies.limit_specs[0].data == {
        "id": "db-rate",
        "tools": ["db__*"],
        "per": ["user"],
        "rate": "10/minute",
    }
    assert policies.limit_specs[0].file.endswith("p.yaml")


def test_candidate_rules_are_indexed_by_tool_name(tmp_path: Path) -> None:
    rules = "\n".join(f"  - {{id: r{i}, match: {{tools: [t{i}__x]}}, decision: BLOCK}}" for i in range(200))
    policies = load(tmp_path, "rules:\n" + rules + "\n  - {id: g, match: {tools: ['t1*']}, decision: WARN}\n")
    assert [r.id for r in policies.candidates("t5__x")] == ["r5"]
    assert [r.id for r in policies.candidates("t15__x")] == ["r15", "g"]


def test_many_scoped_rules_keep_evaluation_order_through_the_scope_index(tmp_path: Path) -> None:
    lines = [
        f"  - {{id: team{i}, priority: {100 - i}, scope: {{team: t{i}}}, decision: WARN}}" for i in range(40)
    ]
    lines += [
        "  - {id: org, priority: 95, decision: MONITOR_ONLY}",
        "  - {id: both, priority: 95, scope: {role: lead, team: t5}, decision: BLOCK}",
    ]
    policies = load(tmp_path, "rules:\n" + "\n".join(lines) + "\n")
    p = who(teams=["t5", "t7", "t30"], roles=["lead"])
    result = policies.evaluate(request(principal=p))
    assert result.matched == ("team30", "team7", "both", "team5", "org")
    assert result.deciding_rule == "team30"
    assert policies.evaluate(request(principal=who(teams=["t5"]))).matched == ("team5", "org")
