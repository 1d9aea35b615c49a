"""`mcp-guard policy check | test | explain` and the bundled example policies."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from mcp_guard.policy.commands import register

from .helpers import write

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "policies"


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="mcp-guard")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    code = args.func(args, out, out)
    return code, out.getvalue()


def test_check_accepts_the_bundled_example_policies() -> None:
    code, out = run("policy", "check", "--policies", str(EXAMPLES))
    assert code == 0, out
    assert "0 warning(s)" in out


def test_the_bundled_example_test_cases_pass() -> None:
    code, out = run("policy", "test", "--policies", str(EXAMPLES))
    assert code == 0, out
    assert " 0 failed" in out


def test_the_bundled_rego_example_loads() -> None:
    code, out = run("policy", "check", "--policies", str(EXAMPLES / "extras"))
    assert code == 0, out


def test_check_fails_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "rules:\n  - {id: r, decision: NOPE}\n")
    code, out = run("policy", "check", "--policies", str(tmp_path))
    assert code == 1
    assert f"error: {tmp_path / 'p.yaml'}:2: " in out


def test_test_reports_each_failure_and_exits_1(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "rules:\n  - {id: r, match: {tools: [db__query]}, decision: WARN}\n")
    (tmp_path / "tests").mkdir()
    write(
        tmp_path / "tests",
        "c.yaml",
        """
        cases:
          - name: queries warn
            principal: {user: a}
            tool: db__query
            expect: {decision: WARN, rules: [r]}
          - name: wrongly expected block
            principal: {user: a}
            tool: db__query
            expect: {decision: BLOCK}
        """,
    )
    code, out = run("policy", "test", "--policies", str(tmp_path))
    assert code == 1
    assert "PASS  queries warn" in out
    assert "FAIL  wrongly expected block" in out
    assert "decision WARN, expected BLOCK" in out
    assert "1 passed, 1 failed" in out


def test_explain_shows_the_decision_and_every_rule_considered(tmp_path: Path) -> None:
    principal = write(tmp_path, "bob.yaml", "user: bob\nteams: [finance]\n")
    code, out = run(
        "policy",
        "explain",
        "--policies",
        str(EXAMPLES),
        "--tool",
        "bank__refund",
        "--principal-file",
        str(principal),
        "--args",
        '{"amount": 1500}',
        "--time",
        "2026-01-05T10:00:00+00:00",
        "--json",
    )
    assert code == 0, out
    report = json.loads(out)
    assert report["decision"] == "APPROVAL_REQUIRED"
    assert report["rules"] == ["refund-needs-approval"]
    assert report["approval"]["ttl_s"] == 1800
    considered = {row["id"]: row for row in report["considered"]}
    assert considered["refund-needs-approval"]["matched"] is True
    assert considered["block-ssn"]["matched"] is False
    assert considered["block-ssn"]["where"].endswith("finance.yaml:4")


def test_explain_prints_a_readable_report(tmp_path: Path) -> None:
    principal = write(tmp_path, "ian.json", '{"user": "ian", "roles": ["intern"], "teams": ["finance"]}')
    code, out = run(
        "policy",
        "explain",
        "--policies",
        str(EXAMPLES),
        "--tool",
        "bank__refund",
        "--principal-file",
        str(principal),
        "--args",
        '{"amount": 10}',
        "--time",
        "2026-01-10T11:00:00+01:00",
    )
    assert code == 0, out
    assert "decision:  BLOCK  (from rule)" in out
    assert "MATCH  interns-office-hours" in out


def test_explain_rejects_bad_json_arguments(tmp_path: Path) -> None:
    principal = write(tmp_path, "p.yaml", "user: a\n")
    code, out = run(
        "policy",
        "explain",
        "--policies",
        str(EXAMPLES),
        "--tool",
        "x__y",
        "--principal-file",
        str(principal),
        "--args",
        "{not json",
    )
    assert code == 2
    assert out.startswith("error:")


def test_check_reports_every_control_mistake_serve_would_refuse(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "limits:\n  - {bogus: 1}\nbudgets: 5\nrules: []\n")
    code, out = run("policy", "check", "--policies", str(tmp_path))
    file = tmp_path / "p.yaml"
    assert code == 1
    assert out == (
        f"error: {file}:3: budgets: 'budgets' must be a list of mappings, not 5\n"
        f"error: {file}:2: limits[0].id: required key is missing\n"
        f"error: {file}:2: limits[0].rate: required key is missing\n"
        f"error: {file}:2: limits[0].bogus: unknown key\n"
        "4 error(s); policies not loaded\n"
    )


def test_test_reports_bad_case_values_with_file_line_and_key_before_running(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "rules: []\n")
    cases = tmp_path / "cases"
    cases.mkdir()
    file = write(
        cases,
        "c.yaml",
        """
        cases:
          - name: bad history
            principal: {user: bob}
            tool: bank__refund
            history: [{tool: db__x, ago: forever}, {tool: db__x, count: 100000000}]
            risk: .nan
            expect: {decision: ALLOW}
        """,
    )
    code, out = run("policy", "test", "--policies", str(tmp_path), "--cases", str(cases))
    assert code == 1
    assert out == (
        f"error: {file}:6: cases.0.risk: a risk score is a number from 0 to 100, not nan\n"
        f"error: {file}:5: cases.0.history.0.ago: invalid duration 'forever' "
        "(expected e.g. 30s, 5m, 2h, 1d)\n"
        f"error: {file}:5: cases.0.history.1.count: Input should be less than or equal to 10000\n"
    )


def test_test_with_a_missing_case_folder_names_it(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "rules: []\n")
    missing = tmp_path / "nonexistent"
    code, out = run("policy", "test", "--policies", str(tmp_path), "--cases", str(missing))
    assert code == 1
    assert out == f"error: {missing}:0: test case folder does not exist\n"


def test_test_with_no_cases_in_the_folder_says_so(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "rules: []\n")
    (tmp_path / "tests").mkdir()
    code, out = run("policy", "test", "--policies", str(tmp_path))
    assert code == 1
    assert out == f"error: {tmp_path / 'tests'}: no test cases found\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--findings", '"US_SSN"'], '--findings: expected a JSON list such as ["US_SSN"], not string'),
        (["--findings", '{"US_SSN": 1}'], '--findings: expected a JSON list such as ["US_SSN"], not object'),
        (
            ["--findings", '["US_SSN", 7]'],
            '--findings: item 1: expected a finding type such as "US_SSN" or an object with type, '
            "category, severity, path; not number",
        ),
        (
            ["--findings", '[{"type": "US_SSN", "severity": "huge"}]'],
            "--findings: item 0: severity: Input should be 'low', 'medium', 'high' or 'critical'",
        ),
        (["--findings", "[US_SSN]"], "--findings: invalid JSON: Expecting value: line 1 column 2 (char 1)"),
        (["--risk", "nan"], "--risk: a risk score is a number from 0 to 100, not nan"),
        (["--risk", "-50"], "--risk: a risk score is a number from 0 to 100, not -50.0"),
        (["--risk", "500"], "--risk: a risk score is a number from 0 to 100, not 500.0"),
        (["--tool", ""], "--tool: expected a namespaced tool name, e.g. bank__refund"),
        (["--args", "[1]"], "--args: expected a JSON object, not list"),
        (
            ["--time", "yesterday"],
            "--time: invalid ISO 8601 time 'yesterday' (e.g. 2026-01-05T10:00:00+00:00)",
        ),
    ],
)
def test_explain_refuses_a_bad_flag_value_in_one_line_naming_the_flag(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    code, out = explain(write(tmp_path, "p.yaml", "user: a\n"), *flags)
    assert code == 2
    assert out == f"error: {message}\n"


@pytest.mark.parametrize(("text", "kind"), [("", "null"), ("- alice\n", "list")])
def test_explain_refuses_a_principal_file_that_is_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    principal = tmp_path / "p.yaml"
    principal.write_text(text, encoding="utf-8")
    code, out = explain(principal)
    assert code == 2
    assert (
        out == f"error: --principal-file: {principal}: expected a mapping such as 'user: alice', not {kind}\n"
    )


def test_explain_names_the_principal_file_and_key_of_a_bad_principal(tmp_path: Path) -> None:
    principal = write(tmp_path, "p.yaml", "user: a\ncolour: blue\n")
    code, out = explain(principal)
    assert code == 2
    assert out == f"error: --principal-file: {principal}:2: colour: unknown key\n"


def test_explain_takes_findings_as_types_or_objects(tmp_path: Path) -> None:
    findings = '["EMAIL", {"type": "US_SSN", "severity": "low"}]'
    code, out = explain(
        write(tmp_path, "p.yaml", "user: a\n"), "--findings", findings, "--risk", "0", "--json"
    )
    assert code == 0, out
    assert json.loads(out)["rules"] == ["block-ssn"]


def explain(principal: Path, *flags: str) -> tuple[int, str]:
    """``policy explain`` of a ``bank__refund`` call by ``principal`` under the bundled policies."""
    base = ["--policies", str(EXAMPLES), "--tool", "bank__refund", "--principal-file", str(principal)]
    return run("policy", "explain", *base, *flags)


def test_explain_decides_for_the_upstream_named_when_its_prefix_differs(tmp_path: Path) -> None:
    # upstreams.yaml may give `sales-crm` the prefix `sales`: its tools are `sales__*`, and the
    # gateway matches `upstreams:` against the upstream's name, not against the prefix.
    folder = tmp_path / "policies"
    folder.mkdir()
    write(folder, "p.yaml", "rules:\n  - id: crm\n    match: {upstreams: [sales-crm]}\n    decision: BLOCK\n")
    principal = write(tmp_path, "a.yaml", "user: a\n")
    base = ["policy", "explain", "--policies", str(folder), "--principal-file", str(principal), "--json"]
    code, out = run(*base, "--tool", "sales__lookup", "--upstream", "sales-crm")
    assert code == 0, out
    assert json.loads(out)["decision"] == "BLOCK" and json.loads(out)["upstream"] == "sales-crm"
    code, out = run(*base, "--tool", "sales__lookup")
    assert json.loads(out)["decision"] == "ALLOW" and json.loads(out)["upstream"] == "sales"
