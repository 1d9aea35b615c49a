"""Factor 1, action severity: read < write < external < delete < execute < privileged."""

from __future__ import annotations

from mcp_guard.risk.config import ActionConfig
from mcp_guard.risk.model import FactorScore

_CACHE_LIMIT = 1024


class ActionFactor:
    """Scores a tool's action classes: the most severe class, plus a bonus per extra non-read class."""

    def __init__(self, config: ActionConfig, weight: float) -> None:
        self.config = config
        self.weight = weight
        self._cache: dict[frozenset[str], FactorScore] = {}
        """Action classes -> their score. Never stale: it depends on them and on the frozen
        ``config`` alone. Bounded: past ``_CACHE_LIMIT`` entries new ones are not kept."""

    def score(self, actions: frozenset[str]) -> FactorScore:
        hit = self._cache.get(actions)
        if hit is None:
            hit = self._score(actions)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[actions] = hit
        return hit

    def _score(self, actions: frozenset[str]) -> FactorScore:
        scores = self.config.scores
        known = sorted((scores[a], a) for a in actions if a in scores)
        if not known:
            what = ", ".join(sorted(actions)) if actions else "none"
            why = f"unclassified tool (action classes: {what})"
            return FactorScore(self.config.unclassified, self.weight, (why,))
        top, name = known[-1]
        extra = sum(1 for _, a in known[:-1] if a != "read")
        score = min(100.0, top + self.config.combo_bonus * extra)
        reason = f"action class '{name}' ({top:g})"
        if extra:
            others = ", ".join(a for _, a in reversed(known[:-1]) if a != "read")
            reason += f" with {others}"
        return FactorScore(score, self.weight, (reason,))
