"""Rate limits: token buckets per control and dimension key.

A bucket holds up to ``burst`` tokens and refills continuously at ``rate`` tokens per
second; a call takes one token or is refused with the time until one is available.
The arithmetic here is pure (state in, state out, clock as an input); where buckets
live is :mod:`mcp_guard.controls.state`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_guard.controls.config import LimitSpec, Scope
from mcp_guard.controls.keys import GlobMatcher, glob_matcher
from mcp_guard.decision import Verdict
from mcp_guard.principal import Principal


@dataclass(slots=True)
class Bucket:
    """Tokens available at monotonic time ``stamp``; full again from ``full_at``."""

    tokens: float
    stamp: float
    full_at: float = 0.0


def take(bucket: Bucket, rate: float, burst: float, amount: float, now: float) -> float:
    """Take ``amount`` tokens from ``bucket`` if it has them.

    Returns 0.0 when taken, else the seconds until ``amount`` tokens will be there
    (the bucket is refilled to ``now`` either way; nothing is taken on refusal).
    A clock that goes backwards never adds tokens.
    """
    elapsed = now - bucket.stamp
    if elapsed > 0:
        bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
        bucket.stamp = now
    if bucket.tokens >= amount:
        bucket.tokens -= amount
        bucket.full_at = now + (burst - bucket.tokens) / rate
        return 0.0
    return (amount - bucket.tokens) / rate


def give_back(bucket: Bucket, burst: float, amount: float) -> None:
    """Return tokens taken for a call that was refused by a later control."""
    bucket.tokens = min(burst, bucket.tokens + amount)


def scope_matcher(scope: Scope | None) -> ScopeMatcher | None:
    return None if scope is None else ScopeMatcher(scope)


class ScopeMatcher:
    """Whether a principal falls inside a control's ``scope``."""

    __slots__ = ("agents", "roles", "teams", "tenants", "users")

    def __init__(self, scope: Scope) -> None:
        self.users = frozenset(scope.users) if scope.users is not None else None
        self.agents = frozenset(scope.agents) if scope.agents is not None else None
        self.roles = frozenset(scope.roles) if scope.roles is not None else None
        self.teams = frozenset(scope.teams) if scope.teams is not None else None
        self.tenants = frozenset(scope.tenants) if scope.tenants is not None else None

    def __call__(self, p: Principal) -> bool:
        return (
            (self.users is None or p.user in self.users)
            and (self.agents is None or p.agent in self.agents)
            and (self.roles is None or not self.roles.isdisjoint(p.roles))
            and (self.teams is None or not self.teams.isdisjoint(p.teams))
            and (self.tenants is None or p.tenant in self.tenants)
        )


class RateLimit:
    """A compiled ``limits:`` item."""

    __slots__ = ("burst", "matches_tool", "matches_upstream", "rate", "scope", "spec")

    def __init__(self, spec: LimitSpec) -> None:
        self.spec = spec
        self.rate = spec.per_second
        self.burst = spec.capacity
        self.matches_tool: GlobMatcher = glob_matcher(spec.tools)
        self.matches_upstream: GlobMatcher = glob_matcher(spec.upstreams)
        self.scope = scope_matcher(spec.scope)

    def refusal(self, label: str, retry_after: float) -> Verdict:
        count, per = self.spec.rate
        return Verdict(
            decision=self.spec.decision,
            rules=(self.spec.id,),
            reason=(
                f"Rate limit '{self.spec.id}' exceeded for {label}: {count:g} calls per "
                f"{_per(per)} (burst {self.burst:g}); retry in {retry_after:.1f} s."
            ),
            details={"control": "rate_limit", "retry_after": round(retry_after, 3), "key": label},
        )


def _per(seconds: float) -> str:
    for unit, size in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
        if seconds == size:
            return unit
    return f"{seconds:g} s"
