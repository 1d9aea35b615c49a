"""``mcp-guard policy check | test | explain``: the policy engine's command-line face.

The main CLI calls :func:`register` with its sub-parsers; each command sets
``func`` to a ``(args) -> int`` returning the process exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from mcp_guard.config.yaml_source import load_yaml
from mcp_guard.errors import ConfigError
from mcp_guard.policy.cases import (
    Case,
    CaseFinding,
    CaseTool,
    Expect,
    build_request,
    load_cases,
    run_cases,
)
from mcp_guard.policy.engine import PolicySet
from mcp_guard.policy.loader import load_policy_dir
from mcp_guard.principal import Principal

DEFAULT_DIR = "policies"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy`` with its ``check``, ``test`` and ``explain`` sub-commands."""
    policy = subparsers.add_parser("policy", help="check, test and explain policies")
    sub = policy.add_subparsers(dest="policy_command", required=True)

    check = sub.add_parser("check", help="validate a policy folder and show warnings")
    check.add_argument("--policies", default=DEFAULT_DIR, help="policy folder (default: policies)")
    check.set_defaults(func=cmd_check)

    test = sub.add_parser("test", help="run the policy test cases")
    test.add_argument("--policies", default=DEFAULT_DIR, help="policy folder (default: policies)")
    test.add_argument("--cases", default=None, help="test case folder (default: <policies>/tests)")
    test.set_defaults(func=cmd_test)

    explain = sub.add_parser("explain", help="decide one call and explain the decision")
    explain.add_argument("--policies", default=DEFAULT_DIR, help="policy folder (default: policies)")
    explain.add_argument("--tool", required=True, help="namespaced tool name, e.g. bank__refund")
    explain.add_argument("--principal-file", required=True, help="YAML/JSON file with the principal")
    explain.add_argument("--args", default="{}", help="tool arguments as a JSON object")
    explain.add_argument("--time", default=None, help="ISO 8601 time (default: now)")
    explain.add_argument("--findings", default="[]", help='JSON list, e.g. ["US_SSN"]')
    explain.add_argument("--risk", type=float, default=None, help="composite risk score 0-100")
    explain.add_argument("--environment", default=None, help="the upstream's environment")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.set_defaults(func=cmd_explain)


def _load(folder: str, err: TextIO) -> PolicySet | None:
    try:
        return load_policy_dir(folder)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=err)
        print(f"{len(exc.problems)} error(s); policies not loaded", file=err)
        return None


def cmd_check(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    policies = _load(args.policies, err)
    if policies is None:
        return 1
    for warning in policies.warnings:
        print(f"warning: {warning}", file=out)
    rego = len([f for f in policies.files if f.endswith(".rego")])
    print(
        f"ok: {len(policies.rules)} rule(s) in {len(policies.files) - rego} YAML file(s), "
        f"{rego} Rego module(s), {len(policies.warnings)} warning(s)",
        file=out,
    )
    return 0


def cmd_test(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    policies = _load(args.policies, err)
    if policies is None:
        return 1
    folder = args.cases or str(Path(args.policies) / "tests")
    try:
        cases = load_cases(folder)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=err)
        return 1
    outcomes = run_cases(cases, policies)
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        print(f"{'PASS' if o.passed else 'FAIL'}  {o.name}  ({o.where})", file=out)
        for failure in o.failures:
            print(f"        {failure}", file=out)
        if o.failures and o.result is not None:
            print(f"        reason: {o.result.verdict.reason}", file=out)
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed", file=out)
    return 1 if failed or not outcomes else 0


def cmd_explain(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    policies = _load(args.policies, err)
    if policies is None:
        return 1
    try:
        principal = Principal.model_validate(load_yaml(args.principal_file).data)
        arguments = json.loads(args.args)
        findings = json.loads(args.findings)
        now = datetime.fromisoformat(args.time) if args.time else datetime.now(UTC)
        case = Case(
            name="explain",
            principal=principal,
            tool=CaseTool(name=args.tool, environment=args.environment),
            arguments=arguments,
            findings=[f if isinstance(f, str) else CaseFinding.model_validate(f) for f in findings],
            risk=args.risk,
            time=now,
            expect=Expect(),
        )
    except (ConfigError, ValidationError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    req = build_request(case, policies)
    result = policies.evaluate(req)
    report = explanation(policies, result.matched, req.tool.name) | {
        "decision": result.decision.value,
        "rules": list(result.verdict.rules),
        "reason": result.verdict.reason,
        "deciding_rule": result.deciding_rule,
        "risk": req.risk,
        "risk_decision": result.risk_decision.value if result.risk_decision else None,
        "source": result.verdict.details.get("source"),
        "shadow": result.shadow.decision.value if result.shadow else None,
        "visible": policies.visible(req.principal, req.tool, req.now),
        "actions": sorted(req.tool.actions),
        "approval": result.approval.model_dump() if result.approval else None,
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str), file=out)
    else:
        _print_report(report, out)
    return 0


def explanation(policies: PolicySet, matched: tuple[str, ...], tool: str) -> dict[str, Any]:
    """Candidate and matched rules with their locations."""
    rows = []
    for rule in policies.candidates(tool):
        rows.append(
            {
                "id": rule.id,
                "where": rule.where,
                "priority": rule.priority,
                "decision": rule.decision,
                "shadow": rule.shadow,
                "matched": rule.id in matched,
            }
        )
    return {"tool": tool, "considered": rows, "matched": list(matched)}


def _print_report(report: dict[str, Any], out: TextIO) -> None:
    print(f"tool:      {report['tool']}  (actions: {', '.join(report['actions']) or '-'})", file=out)
    print(f"decision:  {report['decision']}  (from {report['source']})", file=out)
    print(f"rules:     {', '.join(report['rules']) or '-'}", file=out)
    print(f"reason:    {report['reason']}", file=out)
    print(f"risk:      {report['risk']}  -> {report['risk_decision'] or '-'}", file=out)
    print(f"shadow:    {report['shadow'] or '-'}", file=out)
    print(f"visible:   {report['visible']}", file=out)
    if report["approval"]:
        print(f"approval:  {report['approval']}", file=out)
    print("rules considered (evaluation order):", file=out)
    for row in report["considered"]:
        mark = "MATCH" if row["matched"] else "  -  "
        shadow = " [shadow]" if row["shadow"] else ""
        print(
            f"  {mark}  {row['id']}  p{row['priority']} {row['decision']}{shadow}  {row['where']}", file=out
        )
