"""Every load error names file:line, and all problems are reported at once; warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.errors import ConfigError
from mcp_guard.pipeline.governance import _request_spec
from mcp_guard.policy import load_policy_dir

from .helpers import request, write


def problems(tmp_path: Path, text: str) -> list[str]:
    write(tmp_path, "p.yaml", text)
    with pytest.raises(ConfigError) as exc:
        load_policy_dir(tmp_path)
    return exc.value.problems


RULE = "rules:\n  - id: r\n    decision: BLOCK\n"
WHEN = RULE + "    when:\n      "
APPROVAL = "rules:\n  - id: r\n    decision: APPROVAL_REQUIRED\n    approval: "


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (RULE + "    colour: red\n", 4, "unknown field 'colour'"),
        (WHEN + "args.a: {bigger: 3}\n", 5, "unknown operator 'bigger'"),
        (WHEN + "args.a: {regex: 'a('}\n", 5, "invalid regex"),
        (WHEN + "args.a: {regex: '(a)\\1'}\n", 5, "invalid escape sequence: \\1 (policy regexes are RE2"),
        (WHEN + "args.a: {regex: '(?<=x)y'}\n", 5, "invalid perl operator: (?<= (policy regexes are RE2"),
        (WHEN + "args.a: {gt: ten}\n", 5, "'gt' takes a number"),
        (WHEN + "time: {inside: '25:00-26:00'}\n", 5, "out of range"),
        (WHEN + "time: {inside: '9-5'}\n", 5, "invalid time window"),
        (WHEN + "time: {inside: '09:00-09:00'}\n", 5, "start equals end"),
        (WHEN + "time: {days: 'mon-fry'}\n", 5, "unknown day"),
        (WHEN + "time: {inside: '09:00-17:00', tz: Mars/Base}\n", 5, "unknown time zone"),
        ("rules:\n  - id: r\n    decision: DENY\n", 3, "unknown decision 'DENY'"),
        (RULE + "    scope: {department: x}\n", 4, "unknown scope kind 'department'"),
        (RULE + "    match: {tool: [x]}\n", 4, "unknown match key 'tool'"),
        (RULE + "    match: {actions: [launch]}\n", 4, "unknown action class 'launch'"),
        (WHEN + "principal.dept: x\n", 5, "unknown principal field"),
        (WHEN + "wheather: sunny\n", 5, "unknown condition 'wheather'"),
        (WHEN + "args.a[: 1\n", 5, "malformed argument path"),
        (WHEN + "findings: {min_severity: huge}\n", 5, "unknown severity"),
        (WHEN + "history: {within: soon}\n", 5, "invalid duration"),
        (WHEN + "history: {within: 0}\n", 5, "history.within: invalid duration 0: must be longer than 0"),
        (WHEN + "history: {within: 400d}\n", 5, "within: invalid duration '400d': must be at most 365 days"),
        (WHEN + "history: {within: 60s, across: tenant}\n", 5, "history.across: 'across' is 'session'"),
        (APPROVAL + "{ttl: 0}\n", 4, "rules.0.approval.ttl: invalid duration 0: must be longer than 0"),
        (APPROVAL + "{ttl: 99999999999d}\n", 4, "ttl: invalid duration '99999999999d': must be at most 365"),
        (APPROVAL + "{ttl: .nan}\n", 4, "rules.0.approval.ttl: invalid duration nan: not a number"),
        (APPROVAL + "{ttl: .inf}\n", 4, "rules.0.approval.ttl: invalid duration inf: must be at most 365"),
        (APPROVAL + "{ttl: -5}\n", 4, "rules.0.approval.ttl: invalid duration -5: must not be negative"),
        ("limits:\n  - {bogus: 1}\n", 2, "limits[0].id: required key is missing"),
        ("limits:\n  - {bogus: 1}\n", 2, "limits[0].bogus: unknown key"),
        ("limits:\n  - {id: l, rate: 1/400d}\n", 2, "limits[l].rate: invalid rate '1/400d'"),
        ("budgets: 5\n", 1, "budgets: 'budgets' must be a list of mappings, not 5"),
        ("breakers:\n  - {id: b, open_for: 400d}\n", 2, "open_for: invalid duration '400d': must be at most"),
        (
            "rules:\n  - id: r\n    decision: WARN\n    approval: {mode: hold}\n",
            4,
            "only allowed on APPROVAL_REQUIRED",
        ),
        (
            "rules:\n  - id: r\n    decision: APPROVAL_REQUIRED\n    approval: {mode: later}\n",
            4,
            "approval.mode",
        ),
        ("rules:\n  - id: r\n    priority: high\n    decision: BLOCK\n", 3, "'priority' must be an integer"),
        ("rules:\n  - decision: BLOCK\n", 2, "needs a non-empty string 'id'"),
        ("rules:\n  - id: r\n", 2, "required field 'decision' is missing"),
        ("rulez: []\n", 1, "rulez: unknown key"),
        ("default: MAYBE\n", 1, "unknown decision 'MAYBE'"),
        ("risk_thresholds: {BLOCK: 50, WARN: 80}\n", 1, "is below the one for WARN"),
        ("risk_thresholds: {BLOCK: 150}\n", 1, "from 0 to 100"),
        ("actions: {'db__*': [nuke]}\n", 1, "unknown action class 'nuke'"),
        (
            "rules:\n  - id: r\n    decision: BLOCK\n  - id: r\n    decision: WARN\n",
            4,
            "duplicate rule id 'r'",
        ),
        (RULE + "    when: {a: 1, a: 2}\n", 4, "duplicate key"),
        (RULE + "    when: {yes: 1}\n", 4, "rules.0.when.yes: a key must be a string, not bool"),
        (
            "rules:\n  - &r {id: r, decision: BLOCK, when: {time: {inside: xx}}}\n  - {<<: *r, id: s}\n",
            2,
            "rules.1.when.time",
        ),
        ("rules: [\n", 2, "invalid YAML"),
    ],
)
def test_each_mistake_is_reported_with_its_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    found = problems(tmp_path, text)
    assert any(p.startswith(f"{tmp_path / 'p.yaml'}:{line}: ") and fragment in p for p in found), found


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
rules:
  - id: a
    decision: NOPE
  - id: b
    decision: BLOCK
    when:
      args.x: {regex: "("}
      time: {inside: "xx"}
""",
    )
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in found] == ["3", "7", "8"]


def test_a_bad_approval_ttl_does_not_hide_the_other_mistakes_in_its_block(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "rules:\n  - id: r\n    decision: APPROVAL_REQUIRED\n    approval: {mode: later, ttl: 0}\n"
    )
    assert [p.split(": ", 2)[1] for p in found] == ["rules.0.approval.ttl", "rules.0.approval.mode"]


def test_controls_are_checked_with_the_rules_and_reported_with_them(tmp_path: Path) -> None:
    found = problems(tmp_path, "limits:\n  - {bogus: 1}\nbudgets: 5\nrules:\n  - {id: r, decision: NOPE}\n")
    file = tmp_path / "p.yaml"
    assert found == [
        f"{file}:3: budgets: 'budgets' must be a list of mappings, not 5",
        f"{file}:5: rules.0.decision: unknown decision 'NOPE' (expected one of ALLOW, MONITOR_ONLY, WARN, "
        "APPROVAL_REQUIRED, BLOCK, HIDE)",
        f"{file}:2: limits[0].id: required key is missing",
        f"{file}:2: limits[0].rate: required key is missing",
        f"{file}:2: limits[0].bogus: unknown key",
    ]


def test_duplicate_rule_ids_are_found_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - {id: same, decision: WARN}\n")
    write(tmp_path, "b.yaml", "rules:\n\n  - {id: same, decision: BLOCK}\n")
    with pytest.raises(ConfigError) as exc:
        load_policy_dir(tmp_path)
    assert exc.value.problems == [
        f"{tmp_path / 'b.yaml'}:3: rules.0.id: duplicate rule id 'same' "
        f"(first defined at {tmp_path / 'a.yaml'}:2)"
    ]


def test_default_and_risk_thresholds_may_be_set_in_one_file_only(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "default: ALLOW\nrisk_thresholds: {BLOCK: 90}\n")
    write(tmp_path, "b.yaml", "default: BLOCK\nrisk_thresholds: {BLOCK: 80}\n")
    with pytest.raises(ConfigError) as exc:
        load_policy_dir(tmp_path)
    assert len(exc.value.problems) == 2
    assert all(p.startswith(str(tmp_path / "b.yaml")) for p in exc.value.problems)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy_dir(tmp_path / "nope")


def test_files_in_subfolders_are_not_policies(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    write(tmp_path / "tests", "cases.yaml", "cases: []\n")
    write(tmp_path, "p.yaml", "rules: []\n")
    assert load_policy_dir(tmp_path).files == (str(tmp_path / "p.yaml"),)


def test_a_tool_pattern_matching_no_known_tool_is_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yaml",
        "actions: {'crm__*': [read]}\n"
        "rules:\n  - {id: r, match: {tools: ['bank__refnd']}, decision: BLOCK}\n",
    )
    policies = load_policy_dir(tmp_path, known_tools={"bank__refund", "db__query"})
    assert policies.warnings == [
        f"{tmp_path / 'p.yaml'}:3: rule 'r': tool pattern 'bank__refnd' matches no known tool",
        f"{tmp_path / 'p.yaml'}:1: actions: tool pattern 'crm__*' matches no known tool",
    ]
    assert load_policy_dir(tmp_path).warnings == []  # no known tools given: no check


def test_a_rule_behind_an_unconditional_rule_with_the_same_match_is_a_warning(tmp_path: Path) -> None:
    policies = load_policy_dir(
        write(
            tmp_path,
            "p.yaml",
            """
            rules:
              - {id: first, priority: 1, match: {tools: [db__query]}, decision: ALLOW}
              - {id: never, priority: 5, match: {tools: [db__query]}, when: {args.sql: drop}, decision: BLOCK}
              - {id: scoped, priority: 5, scope: {team: x}, match: {tools: [db__query]}, decision: BLOCK}
              - {id: catch-all, priority: 50, decision: WARN}
              - {id: dead, priority: 60, match: {tools: [mail__send_email]}, decision: BLOCK}
            """,
        )
    )
    assert len(policies.warnings) == 2
    assert "rule 'never' can never decide: rule 'first'" in policies.warnings[0]
    assert policies.warnings[0].startswith(f"{tmp_path / 'p.yaml'}:3: ")
    assert "rule 'dead' can never decide: rule 'catch-all'" in policies.warnings[1]


def test_an_approval_block_sets_how_long_an_approval_stays_usable_and_which_channels_hear_of_it(
    tmp_path: Path,
) -> None:
    rule = (
        "rules:\n  - id: r\n    decision: APPROVAL_REQUIRED\n"
        "    approval: {mode: defer, ttl: 30m, valid_for: 5m, channels: [ops-slack]}\n"
    )
    (tmp_path / "p.yaml").write_text(rule)
    spec = load_policy_dir(tmp_path).evaluate(request()).approval
    assert spec is not None
    sent = _request_spec(spec)
    assert (sent.mode, sent.ttl_s, sent.valid_for_s, sent.channels) == ("defer", 1800, 300, ("ops-slack",))
    (tmp_path / "p.yaml").write_text(rule.replace("valid_for: 5m", "valid_for: 0"))
    with pytest.raises(ConfigError, match=r"p\.yaml:4: rules\.0\.approval\.valid_for: invalid duration 0"):
        load_policy_dir(tmp_path)
