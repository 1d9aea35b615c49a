"""Factor 5, behavioural baseline deviation: an unusual tool, argument shape or call rate.

Muted (0) until the agent's baseline has ``warmup_calls`` observed calls. After that:
a tool the agent never used scores ``new_tool_score``, a rarely used one
``rare_tool_score``; a known tool with an argument shape never seen for it
``new_shape_score``; and the calls in the session over the last ``rate_window_s``
(this one included) against the agent's typical rate score from 0 at
``rate_ratio_start`` times the typical rate up to ``rate_max_score`` at
``rate_ratio_full`` times. The sub-signals merge (largest plus ``spill`` times the rest).
"""

from __future__ import annotations

from mcp_guard.risk.baseline import AgentBaseline
from mcp_guard.risk.combine import merge
from mcp_guard.risk.config import BehaviourConfig
from mcp_guard.risk.model import FactorScore
from mcp_guard.sessions.session import Session


class BehaviourFactor:
    def __init__(self, config: BehaviourConfig, spill: float, weight: float) -> None:
        self.config = config
        self.spill = spill
        self.weight = weight
        self._usual = FactorScore(0.0, weight)

    def warm(self, baseline: AgentBaseline | None) -> bool:
        """Whether ``baseline`` has finished its warm-up."""
        return baseline is not None and baseline.calls >= max(1, self.config.warmup_calls)

    def score(
        self,
        tool: str,
        shape: str,
        baseline: AgentBaseline | None,
        session: Session | None,
        ts: float,
    ) -> FactorScore:
        """``ts``: the call's wall time in epoch seconds."""
        cfg = self.config
        if baseline is None or not self.warm(baseline):
            seen = baseline.calls if baseline is not None else 0
            why = f"baseline warming up ({seen}/{cfg.warmup_calls} calls): muted"
            return FactorScore(0.0, self.weight, (why,))
        parts: list[float] = []
        reasons: list[str] = []
        used = baseline.tool_count(tool)
        if used == 0:
            parts.append(cfg.new_tool_score)
            reasons.append(f"tool never used by this agent in {baseline.calls} calls")
        elif used / baseline.calls < cfg.rare_tool_fraction:
            parts.append(cfg.rare_tool_score)
            reasons.append(f"tool rarely used by this agent ({used} of {baseline.calls} calls)")
        if used and not baseline.knows_shape(tool, shape):
            parts.append(cfg.new_shape_score)
            reasons.append("argument shape never seen for this tool")
        if session is not None:
            current = session.count_tagged("*", cfg.rate_window_s, ts) + 1
            typical = max(1.0, baseline.typical_per_minute() * cfg.rate_window_s / 60.0)
            ratio = current / typical
            if ratio > cfg.rate_ratio_start:
                span = cfg.rate_ratio_full - cfg.rate_ratio_start
                rate = cfg.rate_max_score * min(1.0, (ratio - cfg.rate_ratio_start) / span)
                parts.append(rate)
                reasons.append(
                    f"{current} calls in {cfg.rate_window_s:g} s, "
                    f"{ratio:.1f}x the agent's typical {typical:.1f}"
                )
        if not parts:
            return self._usual
        return FactorScore(merge(parts, self.spill), self.weight, tuple(reasons))
