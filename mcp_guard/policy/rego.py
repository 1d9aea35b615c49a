"""Rego policies: the contract, and what can be read from the source without evaluating it.

Contract: the folder's ``.rego`` modules are loaded into one interpreter and the
entrypoint ``data.mcpguard.decision`` must evaluate, for every request, to::

    {"decision": "ALLOW|MONITOR_ONLY|WARN|APPROVAL_REQUIRED|BLOCK",
     "rules": ["rule-id", ...],      # optional, default []
     "reason": "one sentence"}       # optional

The input document is built by :func:`rego_input`. Nothing here imports regopy: Rego is
evaluated in a child process (:mod:`mcp_guard.policy.rego_engine`, driven by
:mod:`mcp_guard.policy.rego_check`), never in the gateway's. Loading refuses
(``file:line``): a module that does not parse or compile, a regex with ``(?i)`` (regopy
silently never matches it), a call to a function that is neither a builtin nor defined
in the folder, an entrypoint that is undefined for an empty request (add ``default
decision := ...``), and any ``test_`` rule that is not ``true``. At query time any
error, a crash of the engine or an undefined or malformed result becomes BLOCK.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from mcp_guard.decision import Decision
from mcp_guard.policy.engine import EngineOutcome
from mcp_guard.policy.types import PolicyRequest

EMPTY_REQUEST: dict[str, Any] = {
    "principal": {},
    "tool": {},
    "arguments": {},
    "findings": [],
    "risk_factors": {},
}
"""The input every entrypoint must decide at load time (``default decision := ...``)."""

ENTRYPOINT = "mcpguard/decision"
DEFINED = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\(|:=|=|\[|\{|if\b|contains\b|$)", re.MULTILINE)
_TEST = re.compile(r"^\s*(test_\w+)\b", re.MULTILINE)
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)", re.MULTILINE)
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')


@dataclass(frozen=True)
class RegoModule:
    file: str
    source: str


class RegoQueryError(Exception):
    """A Rego query failed or produced an unusable result."""


def parse_outcome(raw: Any) -> EngineOutcome:
    """An :class:`EngineOutcome` from the entrypoint's value (BLOCK when malformed)."""
    if not isinstance(raw, dict) or raw.get("decision") not in Decision.__members__:
        return EngineOutcome(
            Decision.BLOCK, ("rego-error",), f"Rego decision has the wrong shape: {raw!r}"[:200], "rego"
        )
    rules = raw.get("rules", [])
    if isinstance(rules, str):
        rules = [rules]
    ids = tuple(str(r) for r in rules) if isinstance(rules, list) else ()
    reason = raw.get("reason", "")
    return EngineOutcome(Decision(raw["decision"]), ids, str(reason) or "Rego policy decided", "rego")


def rego_input(req: PolicyRequest) -> dict[str, Any]:
    """The ``input`` document Rego policies see (see docs/policies.md)."""
    p = req.principal
    now = req.now if req.now.tzinfo is not None else req.now.replace(tzinfo=UTC)
    return {
        "principal": {
            "user": p.user,
            "agent": p.agent,
            "roles": sorted(p.roles),
            "teams": sorted(p.teams),
            "tenant": p.tenant,
            "scopes": sorted(p.scopes),
        },
        "tool": {
            "name": req.tool.name,
            "upstream": req.tool.upstream,
            "actions": sorted(req.tool.actions),
            "environment": req.tool.environment,
        },
        "arguments": dict(req.arguments),
        "findings": [
            {"type": f.type, "category": f.category, "severity": f.severity.value, "path": f.path}
            for f in req.findings
        ],
        "risk": req.risk,
        "risk_factors": dict(req.risk_factors),
        "now": now.isoformat(),
        "now_ns": int(now.timestamp() * 1_000_000_000),
    }


_REF = re.compile(r"(?<![\w.])([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[^\]]*\])+)(\s*\()?")
_BOUND = [
    re.compile(r"([A-Za-z_]\w*)\s*:=", re.MULTILINE),
    re.compile(r"\bsome\s+([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?"),
    re.compile(r"\bevery\s+([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?"),
    re.compile(r"^\s*import\s+[\w.]*?(\w+)\s*(?:as\s+(\w+))?\s*$", re.MULTILINE),
    re.compile(r"^\s*[A-Za-z_]\w*\s*\(([^)]*)\)", re.MULTILINE),
]
_ROOTS = frozenset({"input", "data", "rego", "future"})


def suspicious_references(modules: Sequence[RegoModule]) -> list[str]:
    """Warnings for ``name.field`` references whose root is bound nowhere (likely typos).

    regopy evaluates an unknown variable as undefined instead of rejecting it, which can
    silently turn a BLOCK rule off. This is a heuristic, so it only warns.
    """
    bound: set[str] = set(_ROOTS)
    for m in modules:
        code = code_only(m.source)
        bound.update(DEFINED.findall(code))
        for pattern in _BOUND:
            for found in pattern.findall(code):
                parts = found if isinstance(found, tuple) else (found,)
                for part in parts:
                    bound.update(p.strip() for p in part.split(",") if p.strip())
    out = []
    for m in modules:
        for lineno, line in enumerate(m.source.splitlines(), start=1):
            code = code_only(line)
            if code.lstrip().startswith(("package", "import")):
                continue
            for root, _rest, call in _REF.findall(code):
                if root in bound or call:
                    continue
                out.append(
                    f"{m.file}:{lineno}: '{root}' is not defined anywhere "
                    "(a typo? regopy treats it as undefined)"
                )
                bound.add(root)
    return out


def declares_entrypoint_package(modules: Sequence[RegoModule]) -> bool:
    """Whether some module declares ``package mcpguard`` (where the entrypoint lives)."""
    return any("mcpguard" in _PACKAGE.findall(m.source) for m in modules)


def test_rules(module: RegoModule) -> list[tuple[str, str, int]]:
    """(package, rule, line) for each ``test_`` rule in ``module``."""
    pkg = _PACKAGE.search(module.source)
    if pkg is None:
        return []
    seen: set[str] = set()
    out = []
    for m in _TEST.finditer(module.source):
        name = m.group(1)
        if name not in seen:
            seen.add(name)
            out.append((pkg.group(1), name, module.source.count("\n", 0, m.start(1)) + 1))
    return out


def code_only(code: str) -> str:
    """``code`` with string literals emptied and comments removed."""
    code = _STRING.sub(lambda m: '""', code)
    return re.sub(r"#.*", "", code)
