"""The rule index: which rules can apply to a tool and a principal, in evaluation order.

Rules are indexed by exact tool name, by the literal prefix of their tool globs, and
(within a tool's candidates) by the most specific kind of their scope, so the cost of
a decision depends on the rules that can apply, not on the size of the policy set.
Per-tool results are cached (bounded); everything here is immutable after building.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from mcp_guard.policy.compiler import GLOB_CHARS, CompiledRule
from mcp_guard.policy.syntax import SCOPE_KINDS
from mcp_guard.policy.types import ToolInfo
from mcp_guard.principal import Principal

CACHE_LIMIT = 10_000
SCOPE_INDEX_MIN = 32  # below this many scoped candidates, filtering beats merging
ScopeKey = tuple[str, str]


@dataclass(frozen=True)
class Bucket:
    """Candidates for one tool. With few scoped rules, ``unscoped`` holds every candidate
    (in order) and ``scoped`` is empty; otherwise scoped rules are split out by scope key."""

    unscoped: tuple[CompiledRule, ...]
    scoped: dict[ScopeKey, tuple[CompiledRule, ...]]


class RuleIndex:
    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        """``rules`` must already be in evaluation order."""
        self._rank = {id(r): i for i, r in enumerate(rules)}
        self._exact: dict[str, list[CompiledRule]] = {}
        self._globbed: list[tuple[str, CompiledRule]] = []
        self._everywhere: list[CompiledRule] = []
        for rule in rules:
            if rule.tools is None:
                self._everywhere.append(rule)
                continue
            for pattern in rule.tools:
                if GLOB_CHARS.isdisjoint(pattern):
                    self._exact.setdefault(pattern, []).append(rule)
                else:
                    self._globbed.append((_literal_prefix(pattern), rule))
        self._by_name: dict[str, tuple[CompiledRule, ...]] = {}
        self._buckets: dict[tuple[str, str, frozenset[str]], Bucket] = {}

    def by_name(self, tool_name: str) -> tuple[CompiledRule, ...]:
        """Rules whose tool match accepts ``tool_name``, in evaluation order."""
        found = self._by_name.get(tool_name)
        if found is None:
            pool = set(self._exact.get(tool_name, ()))
            pool.update(self._everywhere)
            pool.update(r for p, r in self._globbed if tool_name.startswith(p) and r.matches_name(tool_name))
            found = tuple(sorted(pool, key=lambda r: self._rank[id(r)]))
            if len(self._by_name) >= CACHE_LIMIT:
                self._by_name.clear()
            self._by_name[tool_name] = found
        return found

    def candidates(self, tool: ToolInfo, principal: Principal) -> Sequence[CompiledRule]:
        """Rules whose tool match (name, upstream, actions) accepts ``tool`` and whose
        scope *may* include ``principal`` (callers still run ``scope_check``)."""
        bucket = self._bucket(tool)
        if not bucket.scoped:
            return bucket.unscoped
        extra: list[CompiledRule] = []
        get = bucket.scoped.get
        for key in _scope_keys(principal):
            found = get(key)
            if found:
                extra.extend(found)
        if not extra:
            return bucket.unscoped
        rank = self._rank
        return sorted({*bucket.unscoped, *extra}, key=lambda r: rank[id(r)])

    def _bucket(self, tool: ToolInfo) -> Bucket:
        key = (tool.name, tool.upstream, tool.actions)
        bucket = self._buckets.get(key)
        if bucket is None:
            rules = [
                rule
                for rule in self.by_name(tool.name)
                if (rule.upstreams is None or tool.upstream in rule.upstreams)
                and (rule.actions is None or not rule.actions.isdisjoint(tool.actions))
            ]
            bucket = _split(rules)
            if len(self._buckets) >= CACHE_LIMIT:
                self._buckets.clear()
            self._buckets[key] = bucket
        return bucket


def _split(rules: list[CompiledRule]) -> Bucket:
    if sum(1 for r in rules if r.scope_key) < SCOPE_INDEX_MIN:
        return Bucket(tuple(rules), {})
    unscoped: list[CompiledRule] = []
    scoped: dict[ScopeKey, list[CompiledRule]] = {}
    for rule in rules:
        if not rule.scope_key:
            unscoped.append(rule)
            continue
        kinds = dict(rule.scope_key)
        kind = next(k for k in SCOPE_KINDS if k in kinds)
        for name in kinds[kind]:
            scoped.setdefault((kind, name), []).append(rule)
    return Bucket(tuple(unscoped), {k: tuple(v) for k, v in scoped.items()})


def _scope_keys(p: Principal) -> Iterator[ScopeKey]:
    yield ("user", p.user)
    if p.agent is not None:
        yield ("agent", p.agent)
    if p.tenant is not None:
        yield ("tenant", p.tenant)
    for role in p.roles:
        yield ("role", role)
    for team in p.teams:
        yield ("team", team)


def _literal_prefix(pattern: str) -> str:
    for i, ch in enumerate(pattern):
        if ch in GLOB_CHARS:
            return pattern[:i]
    return pattern
