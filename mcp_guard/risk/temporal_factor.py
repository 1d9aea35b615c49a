"""Factor 3, temporal deviation: a call outside the agent's usual hours.

After warm-up the agent's hour-of-week histogram (UTC, ±1 hour) decides: an hour in
which the agent has never called scores ``never_seen_score``, a rare one
``rare_score``. Before warm-up (or without a baseline) the configured business hours
in their time zone decide: outside them scores ``off_hours_score``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from mcp_guard.risk.baseline import AgentBaseline, hour_of_week
from mcp_guard.risk.config import TemporalConfig
from mcp_guard.risk.model import FactorScore

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _how_label(how: int) -> str:
    return f"{_DAYS[how // 24]} {how % 24:02d}:00 UTC"


class TemporalFactor:
    def __init__(self, config: TemporalConfig, weight: float) -> None:
        self.config = config
        self.weight = weight
        self._usual = FactorScore(0.0, weight)
        self._zone = ZoneInfo(config.business_hours.tz)

    def score(self, now: datetime, ts: float, baseline: AgentBaseline | None) -> FactorScore:
        """``ts``: ``now`` in epoch seconds; ``baseline``: the agent's, once past its warm-up."""
        cfg = self.config
        if baseline is not None:
            how = hour_of_week(ts)
            seen = baseline.hour_count(how)
            if seen == 0:
                why = f"no call by this agent within an hour of {_how_label(how)} in {baseline.calls} calls"
                return FactorScore(cfg.never_seen_score, self.weight, (why,))
            if seen / baseline.calls < cfg.rare_fraction:
                why = f"{_how_label(how)} is rare for this agent ({seen} of {baseline.calls} calls)"
                return FactorScore(cfg.rare_score, self.weight, (why,))
            return self._usual
        hours = cfg.business_hours
        local = now.astimezone(self._zone)
        clock = local.time().replace(tzinfo=None)
        if local.weekday() in hours.days and hours.start <= clock < hours.end:
            return self._usual
        when = f"{_DAYS[local.weekday()]} {clock:%H:%M} {hours.tz}"
        why = f"{when} is outside business hours (no baseline yet)"
        return FactorScore(cfg.off_hours_score, self.weight, (why,))
