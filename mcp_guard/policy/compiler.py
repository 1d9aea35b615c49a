"""Compile: checked rule specs into :class:`CompiledRule` objects with closures.

Also computes the evaluation order and the load-time warnings (tool globs that match
no known tool; rules that can never decide because an earlier unconditional rule with
the same scope and match always decides first).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from fnmatch import fnmatchcase

from mcp_guard.policy.conditions import Cond, compile_when
from mcp_guard.policy.syntax import HIDE, SPECIFICITY, RuleSpec
from mcp_guard.policy.types import ApprovalSpec, PolicyRequest
from mcp_guard.principal import Principal

ScopeCheck = Callable[[Principal], bool]
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """One rule, ready to evaluate. ``decision`` is a Decision value or ``"HIDE"``."""

    id: str
    decision: str
    priority: int
    specificity: int
    order: int
    file: str
    line: int
    description: str
    reason: str
    scope_check: ScopeCheck | None
    tools: tuple[str, ...] | None
    upstreams: frozenset[str] | None
    actions: frozenset[str] | None
    cond: Cond
    unconditional: bool
    shadow: bool
    override_risk: bool
    approval: ApprovalSpec | None
    scope_key: tuple[tuple[str, tuple[str, ...]], ...]
    reads_clock: bool = False
    """Whether the conditions read the clock (``time``), so the rule may hold at one moment
    and not the next for the same principal and tool."""

    @property
    def hides(self) -> bool:
        return self.decision == HIDE

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (self.priority, -self.specificity, self.order)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def explanation(self) -> str:
        return self.reason or self.description or f"rule '{self.id}' matched"

    def applies(self, req: PolicyRequest) -> bool:
        """Scope and the non-name parts of the match (the name is checked by the index)."""
        if self.upstreams is not None and req.tool.upstream not in self.upstreams:
            return False
        if self.actions is not None and self.actions.isdisjoint(req.tool.actions):
            return False
        return self.scope_check is None or self.scope_check(req.principal)

    def matches_name(self, name: str) -> bool:
        return self.tools is None or any(fnmatchcase(name, g) for g in self.tools)


def compile_rule(spec: RuleSpec, order: int, file_shadow: bool) -> CompiledRule | None:
    """Compile one rule; ``None`` after recording errors at ``spec.loc``."""
    compiled = compile_when(spec.when, spec.loc.at("when"))
    if compiled is None:
        return None
    if spec.decision == HIDE and compiled.call_only:
        spec.loc.at("when").error(
            "a HIDE rule also decides tools/list, so it may only use principal, tool, "
            "environment and time conditions (not args, findings, risk or history)"
        )
        return None
    if spec.decision == HIDE and spec.override_risk:
        spec.loc.at("override_risk").error("'override_risk' has no meaning on a HIDE rule")
        return None
    scope_key = tuple(sorted((k, tuple(sorted(v))) for k, v in spec.scope.items()))
    return CompiledRule(
        id=spec.id,
        decision=spec.decision,
        priority=spec.priority,
        specificity=max((SPECIFICITY[k] for k in spec.scope), default=0),
        order=order,
        file=spec.loc.doc.file,
        line=spec.loc.line,
        description=spec.description,
        reason=spec.reason,
        scope_check=_scope_check(spec.scope),
        tools=spec.tools,
        upstreams=spec.upstreams,
        actions=spec.actions,
        cond=compiled.cond,
        unconditional=compiled.always,
        shadow=spec.shadow or file_shadow,
        override_risk=spec.override_risk,
        approval=spec.approval,
        scope_key=scope_key,
        reads_clock=compiled.reads_clock,
    )


def _scope_check(scope: dict[str, frozenset[str]]) -> ScopeCheck | None:
    checks = [_check(kind, names) for kind, names in scope.items()]
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    tup = tuple(checks)
    return lambda p: all(c(p) for c in tup)


def _check(kind: str, names: frozenset[str]) -> ScopeCheck:
    if kind == "user":
        return lambda p: p.user in names
    if kind == "agent":
        return lambda p: p.agent is not None and p.agent in names
    if kind == "tenant":
        return lambda p: p.tenant is not None and p.tenant in names
    if kind == "role":
        return lambda p: not names.isdisjoint(p.roles)
    return lambda p: not names.isdisjoint(p.teams)


def shadowed_warnings(rules: list[CompiledRule]) -> list[str]:
    """Warnings for rules that can never decide (``rules`` in evaluation order)."""
    out: list[str] = []
    first: dict[tuple[object, ...], CompiledRule] = {}
    catch_all: CompiledRule | None = None
    for rule in rules:
        if rule.hides or rule.shadow:
            continue
        key = (rule.scope_key, rule.tools, rule.upstreams, rule.actions)
        earlier = catch_all or first.get(key)
        if earlier is not None:
            out.append(
                f"{rule.where}: rule '{rule.id}' can never decide: rule '{earlier.id}' "
                f"({earlier.where}) has the same scope and match, no conditions, and comes first"
            )
            continue
        if rule.unconditional:
            first.setdefault(key, rule)
            if _covers_everything(rule):
                catch_all = rule
    return out


def _covers_everything(rule: CompiledRule) -> bool:
    no_match = not rule.scope_key and rule.upstreams is None and rule.actions is None
    return no_match and (rule.tools is None or "*" in rule.tools)


def unknown_glob_warnings(rules: list[CompiledRule], known_tools: Collection[str]) -> list[str]:
    """Warnings for tool globs that match none of ``known_tools``."""
    out = []
    for rule in rules:
        for glob in rule.tools or ():
            if not any(fnmatchcase(t, glob) for t in known_tools):
                out.append(f"{rule.where}: rule '{rule.id}': tool pattern '{glob}' matches no known tool")
    return out


def unknown_upstream_warnings(rules: list[CompiledRule], upstreams: Collection[str]) -> list[str]:
    """Warnings for ``match.upstreams`` names that are not configured upstreams.

    Upstream names are compared exactly, so a misspelt one (``bnak``) silently never
    matches, and a BLOCK rule naming it protects nothing.
    """
    return [
        f"{rule.where}: rule '{rule.id}': upstream '{name}' is not a configured upstream"
        for rule in rules
        for name in sorted(rule.upstreams or ())
        if name not in upstreams
    ]
