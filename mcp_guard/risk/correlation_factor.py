"""Factor 6, cross-request correlation: what happened earlier in this session or workflow.

Patterns (each a sub-signal; they merge as largest plus ``spill`` times the rest):

- **taint to sink** -- a result carried PII or secrets (``taint_categories``) within
  ``taint_window_s`` and this call is a sink (an action in ``sink_actions``, or a tool
  matching ``sink_tools``): scored by the taint's severity, ``secret_taint_score`` for
  secrets;
- **injection then action** -- a result carried an injection or poisoning finding and
  this call can act (``injection_follow_actions``): ``injection_follow_score``;
- **read then exfiltrate** -- at least ``exfil_min_reads`` forwarded reads within
  ``exfil_window_s`` and this call is a sink;
- **delete burst** -- this call deletes and, with it, ``delete_burst`` delete calls
  (attempted, whatever their decision) fall within ``delete_window_s``;
- **repeated blocks** -- ``blocked_count`` blocked calls within ``blocked_window_s``.

The MCP session, the workflow session and the principal's session (every call of the
principal, across connections and workflows: what a client cannot shed by reconnecting)
are scored separately; the highest wins.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import NamedTuple

from mcp_guard.risk.combine import merge
from mcp_guard.risk.config import CorrelationConfig
from mcp_guard.risk.model import FactorScore
from mcp_guard.sessions.session import Session

Result = tuple[float, tuple[str, ...]]
_NOTHING: Result = (0.0, ())
_CACHE_LIMIT = 4096


class _Role(NamedTuple):
    """What a call of one tool with given action classes can do, as the patterns ask."""

    sink: bool
    acting: str | None
    """Its ``injection_follow_actions``, sorted and joined; ``None`` when it has none."""
    deleting: bool
    inert: bool
    """Neither a sink, nor able to act, nor deleting: only repeated blocks can correlate it."""


class CorrelationFactor:
    def __init__(self, config: CorrelationConfig, spill: float, weight: float) -> None:
        self.config = config
        self.spill = spill
        self.weight = weight
        self._nothing = FactorScore(0.0, weight)
        self._roles: dict[tuple[str, frozenset[str]], _Role] = {}
        """(tool, action classes) -> its :class:`_Role`, so the ``sink_tools`` globs are
        matched once per tool. Never stale: a role depends on its key and on ``config``
        alone, which is frozen and fixed for the scorer's life. Bounded: cleared when it
        holds ``_CACHE_LIMIT`` entries."""

    def score(
        self,
        tool: str,
        actions: frozenset[str],
        *,
        session: Session | None,
        workflow: Session | None,
        ts: float,
        principal_session: Session | None = None,
    ) -> FactorScore:
        """``ts``: the call's wall time in epoch seconds."""
        role = self._roles.get((tool, actions)) or self._role(tool, actions)
        best = _NOTHING
        scopes = (("", session), ("workflow: ", workflow), ("across connections: ", principal_session))
        for label, s in scopes:
            if s is None:
                continue
            score, reasons = self._one(role, s, ts)
            if score > best[0]:
                best = (score, tuple(label + r for r in reasons))
        if best is _NOTHING:
            return self._nothing
        return FactorScore(best[0], self.weight, best[1])

    def is_sink(self, tool: str, actions: frozenset[str]) -> bool:
        cfg = self.config
        return not actions.isdisjoint(cfg.sink_actions) or any(fnmatchcase(tool, g) for g in cfg.sink_tools)

    def _role(self, tool: str, actions: frozenset[str]) -> _Role:
        """Work out (and remember) the :class:`_Role` of ``tool`` with ``actions``."""
        sink = self.is_sink(tool, actions)
        follow = actions & self.config.injection_follow_actions
        acting = ", ".join(sorted(follow)) if follow else None
        deleting = "delete" in actions
        role = _Role(sink, acting, deleting, not sink and acting is None and not deleting)
        if len(self._roles) >= _CACHE_LIMIT:
            self._roles.clear()
        self._roles[(tool, actions)] = role
        return role

    def _one(self, role: _Role, session: Session, ts: float) -> Result:
        cfg = self.config
        blocked = session.count_tagged("blocked", cfg.blocked_window_s, ts)
        if blocked < cfg.blocked_count and role.inert:
            return _NOTHING
        sink = role.sink
        parts: list[float] = []
        reasons: list[str] = []
        if sink:
            self._taint_to_sink(session, ts, parts, reasons)
        if role.acting is not None:
            hits = session.tainted_at(cfg.injection_categories, cfg.taint_window_s, ts)
            if hits:
                t = hits[0]
                parts.append(cfg.injection_follow_score)
                reasons.append(
                    f"result of {t.tool} carried {', '.join(sorted(t.types))} {ts - t.ts:.0f} s ago; "
                    f"this call can act ({role.acting})"
                )
        if sink:
            reads = session.count_tagged("read:forwarded", cfg.exfil_window_s, ts)
            if reads >= cfg.exfil_min_reads:
                parts.append(
                    min(cfg.exfil_cap, cfg.exfil_score + cfg.exfil_per_read * (reads - cfg.exfil_min_reads))
                )
                reasons.append(f"{reads} reads in the last {cfg.exfil_window_s:g} s, then a sink")
        if role.deleting:
            k = session.count_tagged("delete", cfg.delete_window_s, ts) + 1
            if k >= cfg.delete_burst:
                parts.append(
                    min(cfg.delete_cap, cfg.delete_score + cfg.delete_per_extra * (k - cfg.delete_burst))
                )
                reasons.append(f"delete burst: {k} deletes within {cfg.delete_window_s:g} s")
        if blocked >= cfg.blocked_count:
            parts.append(
                min(
                    cfg.blocked_cap, cfg.blocked_score + cfg.blocked_per_extra * (blocked - cfg.blocked_count)
                )
            )
            reasons.append(f"{blocked} blocked calls in the last {cfg.blocked_window_s:g} s")
        if not parts:
            return _NOTHING
        return merge(parts, self.spill), tuple(reasons)

    def _taint_to_sink(self, session: Session, ts: float, parts: list[float], reasons: list[str]) -> None:
        cfg = self.config
        hits = session.tainted_at(cfg.taint_categories, cfg.taint_window_s, ts)
        if not hits:
            return
        top = 0.0
        worst = hits[0]
        for t in hits:
            s = cfg.secret_taint_score if "secret" in t.categories else cfg.taint_scores.get(t.severity, 0.0)
            if s > top:
                top, worst = s, t
        parts.append(top)
        reasons.append(
            f"result of {worst.tool} carried {', '.join(sorted(worst.types))} ({worst.severity.value}) "
            f"{ts - worst.ts:.0f} s ago; this call sends data out"
        )
