"""Factors 2 and 7: payload sensitivity (pii, secret) and threat signals (injection, attack, ...).

Both score the findings of their categories in the call's arguments the same way: each
finding scores by its type (``type_scores``) or else its severity; the factor is the
highest finding score plus ``repeat_bonus`` per further finding (at most ``repeat_cap``).
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp_guard.findings import Finding
from mcp_guard.risk.config import FindingsConfig
from mcp_guard.risk.model import FactorScore

MAX_REASONS = 5


class FindingsFactor:
    """Scores the findings of ``config.categories``."""

    def __init__(self, config: FindingsConfig, weight: float) -> None:
        self.config = config
        self.weight = weight
        self._none = FactorScore(0.0, weight)

    def score(self, findings: Sequence[Finding]) -> FactorScore:
        if not findings:
            return self._none
        cats = self.config.categories
        relevant = [f for f in findings if f.category in cats]
        if not relevant:
            return self._none
        cfg = self.config
        type_scores, severity_scores = cfg.type_scores, cfg.severity_scores
        by_type: dict[str, tuple[float, int, str]] = {}
        for f in relevant:
            s = type_scores.get(f.type)
            if s is None:
                s = severity_scores.get(f.severity, 0.0)
            prev = by_type.get(f.type)
            if prev is None:
                by_type[f.type] = (s, 1, f.path)
            else:
                by_type[f.type] = (max(prev[0], s), prev[1] + 1, prev[2])
        n = len(relevant)
        bonus = min(cfg.repeat_cap, cfg.repeat_bonus * (n - 1))
        ranked = (
            sorted(by_type.items(), key=lambda kv: -kv[1][0]) if len(by_type) > 1 else list(by_type.items())
        )
        top = ranked[0][1][0]
        reasons = tuple(
            f"{count}x {typ} ({s:g}) at {path}" if count > 1 else f"{typ} ({s:g}) at {path}"
            for typ, (s, count, path) in ranked[:MAX_REASONS]
        )
        if bonus:
            reasons += (f"+{bonus:g} for {n} findings",)
        return FactorScore(min(100.0, top + bonus), self.weight, reasons)
