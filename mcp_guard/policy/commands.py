"""``mcp-guard policy check | test | explain``: the policy engine's command-line face.

The main CLI calls :func:`register` with its sub-parsers; each command sets
``func`` to a ``(args) -> int`` returning the process exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pydantic import ValidationError

from mcp_guard.config.yaml_source import load_yaml, validation_problems
from mcp_guard.errors import ConfigError
from mcp_guard.policy.cases import (
    Case,
    CaseFinding,
    CaseTool,
    Expect,
    build_request,
    check_risk,
    load_cases,
    run_cases,
)
from mcp_guard.policy.engine import PolicySet
from mcp_guard.policy.loader import load_policy_dir
from mcp_guard.principal import Principal

DEFAULT_DIR = "policies"
T = TypeVar("T")
V = TypeVar("V")


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
    explain.add_argument(
        "--findings", default="[]", help='JSON list of finding types or objects, e.g. ["US_SSN"]'
    )
    explain.add_argument("--risk", type=float, default=None, help="composite risk score 0-100")
    explain.add_argument(
        "--upstream",
        default="",
        help="the tool's upstream as named in upstreams.yaml (default: the tool name's prefix)",
    )
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
    if not cases:
        print(f"error: {folder}: no test cases found", file=err)
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
    return 1 if failed else 0


def cmd_explain(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    policies = _load(args.policies, err)
    if policies is None:
        return 1
    try:
        case = _explain_case(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=err)
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
        "upstream": req.tool.upstream,
        "actions": sorted(req.tool.actions),
        "approval": result.approval.model_dump() if result.approval else None,
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str), file=out)
    else:
        _print_report(report, out)
    return 0


def _explain_case(args: argparse.Namespace) -> Case:
    """The case ``policy explain``'s flags describe.

    Raises:
        ConfigError: a flag's value is invalid (``--flag: message``).
    """
    return Case(
        name="explain",
        principal=_flag("--principal-file", _principal, args.principal_file),
        tool=CaseTool(
            name=_flag("--tool", _tool_name, args.tool), upstream=args.upstream, environment=args.environment
        ),
        arguments=_flag("--args", _json_object, args.args),
        findings=_flag("--findings", _findings, args.findings),
        risk=None if args.risk is None else _flag("--risk", check_risk, args.risk),
        time=datetime.now(UTC) if args.time is None else _flag("--time", _time, args.time),
        expect=Expect(),
    )


def _flag(flag: str, parse: Callable[[V], T], value: V) -> T:
    """``parse(value)``, its errors prefixed with the flag that gave ``value``."""
    try:
        return parse(value)
    except ConfigError as exc:
        raise ConfigError([f"{flag}: {problem}" for problem in exc.problems]) from None
    except ValueError as exc:
        raise ConfigError([f"{flag}: {exc}"]) from None


def _principal(path: str) -> Principal:
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ValueError(f"{path}: expected a mapping such as 'user: alice', not {_json_type(doc.data)}")
    try:
        return Principal.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, doc, data=doc.data)) from None


def _tool_name(name: str) -> str:
    if not name.strip():
        raise ValueError("expected a namespaced tool name, e.g. bank__refund")
    return name


def _json_object(text: str) -> dict[str, Any]:
    value = _json(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, not {_json_type(value)}")
    return value


def _findings(text: str) -> list[CaseFinding | str]:
    """A JSON list of finding types (``"US_SSN"``) or objects (type, category, severity, path)."""
    items = _json(text)
    if not isinstance(items, list):
        raise ValueError(f'expected a JSON list such as ["US_SSN"], not {_json_type(items)}')
    return [_finding(i, item) for i, item in enumerate(items)]


def _finding(i: int, item: object) -> CaseFinding | str:
    if isinstance(item, str) and item:
        return item
    if not isinstance(item, dict):
        raise ValueError(
            f'item {i}: expected a finding type such as "US_SSN" or an object with type, category, '
            f"severity, path; not {_json_type(item)}"
        )
    try:
        return CaseFinding.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"item {i}: {key + ': ' if key else ''}{first['msg']}") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid ISO 8601 time {text!r} (e.g. 2026-01-05T10:00:00+00:00)") from None


def _json_type(value: object) -> str:
    """How JSON (and the help text) names ``value``'s type."""
    if value is None:
        return "null"
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


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
    actions = ", ".join(report["actions"]) or "-"
    print(f"tool:      {report['tool']}  (upstream: {report['upstream']}; actions: {actions})", file=out)
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
