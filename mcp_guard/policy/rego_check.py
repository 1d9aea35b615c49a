"""Load-time checks for Rego modules; refusal on any problem keeps Rego fail-closed.

regopy can crash the whole process (segfault) on some valid policies -- seen with
``x in {...}`` inside a rule evaluated by a test using ``with input as``. So the
checks that *execute* Rego (adding the modules, the ``test_`` rules, a query of the
entrypoint on an empty request) run first in a child process
(``python -m mcp_guard.policy.rego_check FILE...``); only when the child reports no
problem are the modules loaded into this process.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regopy  # type: ignore[import-untyped]

from mcp_guard.policy.rego import (
    ENTRYPOINT,
    RegoModule,
    RegoPolicy,
    RegoQueryError,
    new_interpreter,
    parse_outcome,
    rego_error_location,
    run_query,
    static_problems,
    suspicious_references,
    test_rules,
)

CHILD_TIMEOUT_S = 60.0
EMPTY_REQUEST: dict[str, Any] = {
    "principal": {},
    "tool": {},
    "arguments": {},
    "findings": [],
    "risk_factors": {},
}
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)", re.MULTILINE)


def load_rego(
    modules: Sequence[RegoModule], errors: list[str], warnings: list[str] | None = None
) -> RegoPolicy | None:
    """Check and load ``modules``; ``None`` after appending ``file:line`` problems to ``errors``.

    Likely typos (references to names bound nowhere) are appended to ``warnings``.
    """
    if warnings is not None:
        warnings.extend(suspicious_references(modules))
    problems = static_problems(modules, new_interpreter())
    if not any("mcpguard" in _PACKAGE.findall(m.source) for m in modules):
        problems.append(
            f"{modules[0].file}:1: no module declares 'package mcpguard' (with a 'decision' rule)"
        )
    if not problems:
        problems = _check_in_child(modules)
    if problems:
        errors.extend(problems)
        return None
    policy = RegoPolicy(modules)
    try:
        policy.query(EMPTY_REQUEST)  # build this thread's interpreter now, not on the first call
    except RegoQueryError as exc:
        errors.append(f"{modules[0].file}:1: Rego policy failed after its self-check: {exc}")
        return None
    return policy


def _check_in_child(modules: Sequence[RegoModule]) -> list[str]:
    cmd = [sys.executable, "-m", "mcp_guard.policy.rego_check", *(m.file for m in modules)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return [f"{modules[0].file}:1: Rego self-check did not finish within {CHILD_TIMEOUT_S:g}s"]
    if proc.returncode != 0:
        last = [ln for ln in proc.stderr.splitlines() if ln.startswith("checking ")]
        where = last[-1][len("checking ") :] if last else f"{modules[0].file}:1"
        return [
            f"{where}: regopy crashed (exit code {proc.returncode}) while checking this; "
            "the modules are refused. Known trigger: 'x in {...}' in a rule that a test "
            "evaluates 'with input as' -- compare with == or use a helper set instead"
        ]
    try:
        problems = json.loads(proc.stdout)
    except ValueError:
        return [f"{modules[0].file}:1: Rego self-check gave unreadable output"]
    return [str(p) for p in problems]


def check_modules(modules: Sequence[RegoModule]) -> list[str]:
    """Add the modules, run every ``test_`` rule and query the entrypoint (in this process)."""
    interp = new_interpreter()
    problems: list[str] = []
    for m in modules:
        _progress(f"{m.file}:1")
        try:
            interp.add_module(m.file, m.source)
        except regopy.RegoError as exc:
            line, msg = rego_error_location(exc, m)
            problems.append(f"{m.file}:{line}: Rego error: {msg}")
    if problems:
        return problems
    for m in modules:
        for pkg, name, line in test_rules(m):
            _progress(f"{m.file}:{line}")
            try:
                value = run_query(interp, f"data.{pkg}.{name}")
            except RegoQueryError as exc:
                problems.append(f"{m.file}:{line}: Rego test '{name}' failed: {exc}")
                continue
            if value is not True:
                problems.append(f"{m.file}:{line}: Rego test '{name}' failed (got {value!r}, expected true)")
    _progress(f"{modules[0].file}:1")
    policy = RegoPolicy(modules)
    try:
        outcome = parse_outcome(policy.query(EMPTY_REQUEST))
    except RegoQueryError as exc:
        entry = "data." + ENTRYPOINT.replace("/", ".")
        problems.append(
            f"{modules[0].file}:1: {entry} failed for an empty request ({exc}); add "
            '\'default decision := {"decision": "ALLOW", "rules": []}\''
        )
        return problems
    if "rego-error" in outcome.rules:
        problems.append(f"{modules[0].file}:1: {outcome.reason}")
    return problems


def _progress(where: str) -> None:
    print(f"checking {where}", file=sys.stderr, flush=True)


def main(argv: Sequence[str]) -> int:
    modules = [RegoModule(f, Path(f).read_text(encoding="utf-8")) for f in argv]
    print(json.dumps(check_modules(modules)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
