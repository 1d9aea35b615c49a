"""Factor 1, action severity: read < write < external < delete < execute < privileged."""

from __future__ import annotations

from mcp_guard.risk.config import ActionConfig

Result = tuple[float, tuple[str, ...]]


class ActionFactor:
    """Scores a tool's action classes: the most severe class, plus a bonus per extra non-read class."""

    def __init__(self, config: ActionConfig) -> None:
        self.config = config
        self._cache: dict[frozenset[str], Result] = {}

    def score(self, actions: frozenset[str]) -> Result:
        hit = self._cache.get(actions)
        if hit is None:
            hit = self._score(actions)
            if len(self._cache) < 1024:
                self._cache[actions] = hit
        return hit

    def _score(self, actions: frozenset[str]) -> Result:
        scores = self.config.scores
        known = sorted((scores[a], a) for a in actions if a in scores)
        if not known:
            what = ", ".join(sorted(actions)) if actions else "none"
            return self.config.unclassified, (f"unclassified tool (action classes: {what})",)
        top, name = known[-1]
        extra = sum(1 for _, a in known[:-1] if a != "read")
        score = min(100.0, top + self.config.combo_bonus * extra)
        reason = f"action class '{name}' ({top:g})"
        if extra:
            others = ", ".join(a for _, a in reversed(known[:-1]) if a != "read")
            reason += f" with {others}"
        return score, (reason,)
