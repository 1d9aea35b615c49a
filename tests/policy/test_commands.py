"""`mcp-guard policy check | test | explain` and the bundled example policies."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

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
