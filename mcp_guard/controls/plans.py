"""Which controls apply to a call: worked out once per (upstream, tool) and per principal, and cached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp_guard.controls.breaker import Breaker
from mcp_guard.controls.budgets import Budget
from mcp_guard.controls.concurrency import ConcurrencyLimit
from mcp_guard.controls.config import BoundsSpec, ControlsConfig, TimeoutSpec
from mcp_guard.controls.keys import GlobMatcher, counter_keys, glob_matcher, specificity
from mcp_guard.controls.ratelimit import RateLimit
from mcp_guard.principal import Principal

PLAN_CACHE_SIZE = 4096
RESOLVED_CACHE_SIZE = 16384
S = TypeVar("S", TimeoutSpec, BoundsSpec)


@dataclass(frozen=True, slots=True)
class ControlCall:
    """What the controls need to know about one ``tools/call``.

    ``tool`` is the namespaced name (``bank__refund``); ``cost`` is a price the gateway
    computed itself, used by budgets that configure no ``cost`` of their own.
    """

    principal: Principal
    tool: str
    upstream: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    cost: float | None = None


@dataclass(slots=True)
class Resolved:
    """The controls and counter keys of one principal's calls to one tool (cached)."""

    principal: Principal
    limits: tuple[tuple[RateLimit, tuple[str, ...]], ...]
    budgets: tuple[tuple[Budget, tuple[str, ...]], ...]
    concurrency: tuple[tuple[ConcurrencyLimit, str], ...]


@dataclass(slots=True)
class Plan:
    """The controls on one upstream's tool, whoever calls it (cached)."""

    limits: tuple[RateLimit, ...]
    budgets: tuple[Budget, ...]
    concurrency: tuple[ConcurrencyLimit, ...]
    breakers: tuple[tuple[Breaker, str, str], ...]  # (breaker, state key, target)
    bounds: BoundsSpec | None
    timeout: float


class ControlPlans:
    """The controls of one configuration, and which of them apply to each call (cached)."""

    def __init__(self, config: ControlsConfig) -> None:
        self.config = config
        self.limits = tuple(RateLimit(s) for s in config.limits)
        self.budgets = tuple(Budget(s) for s in config.budgets)
        self.concurrency = tuple(ConcurrencyLimit(s) for s in config.concurrency)
        self.breakers = tuple(Breaker(s) for s in config.breakers)
        self._timeouts = _ranked(config.timeouts)
        self._bounds = _ranked(config.result_bounds)
        self._plans: dict[tuple[str, str], Plan] = {}
        # by principal object (identity check; the entry holds the object so its id stays
        # unique) and, for a new object of a known principal, by value (equality check)
        self._by_object: dict[tuple[int, str, str], Resolved] = {}
        self._by_value: dict[tuple[str, str | None, str, str], Resolved] = {}

    def for_tool(self, upstream: str, tool: str) -> Plan:
        """The controls on ``upstream``'s ``tool``, whoever calls it."""
        return self._plans.get((upstream, tool)) or self._plan(upstream, tool)

    def for_call(self, call: ControlCall) -> Resolved:
        """The controls on ``call``'s tool that apply to its principal, with their counter keys."""
        principal = call.principal
        object_key = (id(principal), call.upstream, call.tool)
        resolved = self._by_object.get(object_key)
        if resolved is not None and resolved.principal is principal:
            return resolved
        value_key = (principal.user, principal.agent, call.upstream, call.tool)
        resolved = self._by_value.get(value_key)
        if resolved is None or resolved.principal != principal:
            resolved = self._resolve_new(call)
            if len(self._by_value) >= RESOLVED_CACHE_SIZE:
                self._by_value.clear()
            self._by_value[value_key] = resolved
        if len(self._by_object) >= RESOLVED_CACHE_SIZE:
            self._by_object.clear()
        mine = Resolved(principal, resolved.limits, resolved.budgets, resolved.concurrency)
        self._by_object[object_key] = mine
        return mine

    def _resolve_new(self, call: ControlCall) -> Resolved:
        principal = call.principal
        plan = self.for_tool(call.upstream, call.tool)

        def keys(c: RateLimit | Budget | ConcurrencyLimit) -> tuple[str, ...]:
            return tuple(counter_keys(c.spec.id, c.spec.per, principal, call.upstream, call.tool))

        def applies(c: RateLimit | Budget | ConcurrencyLimit) -> bool:
            return c.scope is None or c.scope(principal)

        return Resolved(
            principal=principal,
            limits=tuple((c, keys(c)) for c in plan.limits if applies(c)),
            budgets=tuple((c, keys(c)) for c in plan.budgets if applies(c)),
            concurrency=tuple((c, k) for c in plan.concurrency if applies(c) for k in keys(c)),
        )

    def _plan(self, upstream: str, tool: str) -> Plan:
        def hit(c: RateLimit | Budget | ConcurrencyLimit | Breaker) -> bool:
            return c.matches_tool(tool) and c.matches_upstream(upstream)

        timeout = _pick(self._timeouts, upstream, tool)
        plan = Plan(
            limits=tuple(c for c in self.limits if hit(c)),
            budgets=tuple(c for c in self.budgets if hit(c)),
            concurrency=tuple(c for c in self.concurrency if hit(c)),
            breakers=tuple(
                (b, f"{b.spec.id}|{b.target(upstream, tool)}", b.target(upstream, tool))
                for b in self.breakers
                if hit(b)
            ),
            bounds=_pick(self._bounds, upstream, tool),
            timeout=self.config.default_timeout if timeout is None else timeout.seconds,
        )
        if len(self._plans) >= PLAN_CACHE_SIZE:
            self._plans.clear()
        self._plans[upstream, tool] = plan
        return plan


def _ranked(specs: Sequence[S]) -> list[tuple[GlobMatcher, GlobMatcher, S]]:
    """Most specific first: tool globs beat upstream globs; then more literal characters; then file order."""
    ranked = sorted(
        enumerate(specs),
        key=lambda p: (-specificity(p[1].tools), -specificity(p[1].upstreams), p[0]),
    )
    return [(glob_matcher(s.tools), glob_matcher(s.upstreams), s) for _, s in ranked]


def _pick(ranked: Sequence[tuple[GlobMatcher, GlobMatcher, S]], upstream: str, tool: str) -> S | None:
    for match_tool, match_upstream, spec in ranked:
        if match_tool(tool) and match_upstream(upstream):
            return spec
    return None
