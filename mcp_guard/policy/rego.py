"""Rego policies evaluated in-process with regopy (rego-cpp), fail closed.

Contract: the folder's ``.rego`` modules are loaded into one interpreter (per thread)
and the entrypoint ``data.mcpguard.decision`` must evaluate, for every request, to::

    {"decision": "ALLOW|MONITOR_ONLY|WARN|APPROVAL_REQUIRED|BLOCK",
     "rules": ["rule-id", ...],      # optional, default []
     "reason": "one sentence"}       # optional

The input document is built by :func:`rego_input`. Loading refuses (``file:line``):
a module that does not parse or compile, a regex with ``(?i)`` (regopy silently never
matches it), a call to a function that is neither a builtin nor defined in the folder,
an entrypoint that is undefined for an empty request (add ``default decision := ...``),
and any ``test_`` rule that is not ``true``. At query time any error or an undefined or
malformed result becomes BLOCK.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import regopy  # type: ignore[import-untyped]
from regopy.rego_shared import (  # type: ignore[import-untyped]
    rego_bundle_query_entrypoint,
    rego_output_ok,
    rego_output_string,
    rego_query,
)

from mcp_guard.decision import Decision
from mcp_guard.policy.engine import EngineOutcome
from mcp_guard.policy.types import PolicyRequest

ENTRYPOINT = "mcpguard/decision"
_KEYWORDS = frozenset(
    [
        "if",
        "else",
        "some",
        "every",
        "in",
        "not",
        "with",
        "as",
        "contains",
        "default",
        "import",
        "package",
        "true",
        "false",
        "null",
        "or",
    ]
)
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\(")
_DEFINED = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\(|:=|=|\[|\{|if\b|contains\b|$)", re.MULTILINE)
_TEST = re.compile(r"^\s*(test_\w+)\b", re.MULTILINE)
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)", re.MULTILINE)
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')
_ERR_LOC = re.compile(r"\(error \d+:([^|]*)\|(\d+)\|")
_ERR_MSG = re.compile(r"\(errormsg \d+:([^)]*)\)")


@dataclass(frozen=True)
class RegoModule:
    file: str
    source: str


class RegoPolicy:
    """The folder's Rego modules as one decision source (an ``ExternalEngine``)."""

    def __init__(self, modules: Sequence[RegoModule]) -> None:
        self.modules = tuple(modules)
        self.name = ", ".join(Path(m.file).name for m in modules)
        self._local = threading.local()

    def decide(self, req: PolicyRequest) -> EngineOutcome:
        try:
            raw = self.query(rego_input(req))
        except RegoQueryError as exc:
            return EngineOutcome(Decision.BLOCK, ("rego-error",), f"Rego policy failed: {exc}", "rego")
        return parse_outcome(raw)

    def query(self, document: dict[str, Any]) -> Any:
        """Evaluate the entrypoint for ``document``; raises RegoQueryError on any error."""
        interp, bundle = self._interpreter()
        try:
            interp.set_input_term(json.dumps(document, default=str))
        except regopy.RegoError as exc:
            raise RegoQueryError(f"bad input: {exc}") from None
        out = rego_bundle_query_entrypoint(interp._impl, bundle._impl, ENTRYPOINT)
        return _read_output(out)

    def _interpreter(self) -> tuple[Any, Any]:
        # regopy interpreters must not be shared across threads: one per thread.
        cached = getattr(self._local, "pair", None)
        if cached is None:
            interp = new_interpreter()
            for m in self.modules:
                interp.add_module(m.file, m.source)
            bundle = interp.build(None, [ENTRYPOINT])
            if not bundle.ok():
                raise RegoQueryError("bundle build failed")
            cached = (interp, bundle)
            self._local.pair = cached
        return cached


class RegoQueryError(Exception):
    """A Rego query failed or produced an unusable result."""


def new_interpreter() -> Any:
    interp = regopy.Interpreter()
    interp.log_level = regopy.LogLevel.NONE
    interp.strict_built_in_errors = True
    return interp


def _read_output(out: Any) -> Any:
    text = rego_output_string(out)
    if not rego_output_ok(out) or text.startswith("(error") or text == "<error>":
        raise RegoQueryError(_error_text(text))
    if text.strip() == "undefined":
        raise RegoQueryError("undefined")
    try:
        parsed = json.loads(text)
    except ValueError:
        raise RegoQueryError(f"unreadable output {text[:120]!r}") from None
    results = parsed if isinstance(parsed, list) else [parsed]
    if len(results) != 1 or not results[0].get("expressions"):
        raise RegoQueryError(f"expected one result, got {text[:120]!r}")
    return results[0]["expressions"][0]


def _error_text(text: str) -> str:
    msgs = _ERR_MSG.findall(text)
    if msgs:
        return "; ".join(msgs)
    if text.strip() == "<error>":
        return "evaluation error (a builtin error, or conflicting values for a complete rule)"
    return text.strip()[:200]


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


def rego_error_location(exc: BaseException, module: RegoModule) -> tuple[int, str]:
    """(line, message) of a regopy load error."""
    text = str(exc)
    msgs = _ERR_MSG.findall(text)
    line = 1
    m = _ERR_LOC.search(text)
    if m and m.group(2).isdigit():
        line = module.source.count("\n", 0, int(m.group(2))) + 1
    return line, "; ".join(msgs) if msgs else text.strip().splitlines()[0] if text.strip() else "error"


def static_problems(modules: Sequence[RegoModule], interp: Any) -> list[str]:
    """Refusals found by reading the source: ``(?i)`` regexes and unknown functions."""
    problems: list[str] = []
    defined: set[str] = set()
    for m in modules:
        defined.update(_DEFINED.findall(_strip(m.source)))
    for m in modules:
        for lineno, raw_line in enumerate(m.source.splitlines(), start=1):
            if "(?i)" in raw_line and not raw_line.lstrip().startswith("#"):
                problems.append(
                    f"{m.file}:{lineno}: regex flag (?i) is not supported by regopy (the match is "
                    "silently undefined); lower-case the text with lower() and match lower-case"
                )
            code = _strip(raw_line)
            for name in _CALL.findall(code):
                if name in _KEYWORDS or name.split(".")[-1] in defined or name in defined:
                    continue
                if name.startswith(("data.", "input.")):
                    continue
                if not interp.is_builtin(name):
                    problems.append(f"{m.file}:{lineno}: unknown function '{name}' (not a builtin or rule)")
    return problems


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
        code = _strip(m.source)
        bound.update(_DEFINED.findall(code))
        for pattern in _BOUND:
            for found in pattern.findall(code):
                parts = found if isinstance(found, tuple) else (found,)
                for part in parts:
                    bound.update(p.strip() for p in part.split(",") if p.strip())
    out = []
    for m in modules:
        for lineno, line in enumerate(m.source.splitlines(), start=1):
            code = _strip(line)
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


def run_query(interp: Any, query: str) -> Any:
    """Evaluate a plain query; raises RegoQueryError."""
    return _read_output(rego_query(interp._impl, query))


def _strip(code: str) -> str:
    code = _STRING.sub(lambda m: '""', code)
    return re.sub(r"#.*", "", code)
