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

Result = tuple[float, tuple[str, ...]]
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _how_label(how: int) -> str:
    return f"{_DAYS[how // 24]} {how % 24:02d}:00 UTC"


class TemporalFactor:
    def __init__(self, config: TemporalConfig, warmup_calls: int) -> None:
        self.config = config
        self.warmup_calls = warmup_calls
        self._zone = ZoneInfo(config.business_hours.tz)

    def score(self, now: datetime, ts: float, baseline: AgentBaseline | None) -> Result:
        cfg = self.config
        if baseline is not None and baseline.calls >= max(1, self.warmup_calls):
            how = hour_of_week(ts)
            seen = baseline.hour_count(how)
            if seen == 0:
                return cfg.never_seen_score, (
                    f"no call by this agent within an hour of {_how_label(how)} in {baseline.calls} calls",
                )
            if seen / baseline.calls < cfg.rare_fraction:
                return cfg.rare_score, (
                    f"{_how_label(how)} is rare for this agent ({seen} of {baseline.calls} calls)",
                )
            return 0.0, ()
        hours = cfg.business_hours
        local = now.astimezone(self._zone)
        clock = local.time().replace(tzinfo=None)
        if local.weekday() in hours.days and hours.start <= clock < hours.end:
            return 0.0, ()
        when = f"{_DAYS[local.weekday()]} {clock:%H:%M} {hours.tz}"
        return cfg.off_hours_score, (f"{when} is outside business hours (no baseline yet)",)
