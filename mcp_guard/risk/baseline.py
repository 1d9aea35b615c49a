"""One agent's behavioural baseline: tool frequencies, argument shapes, hours, call rate.

A baseline only learns from calls the gateway forwarded (the lead calls
:meth:`~mcp_guard.risk.baseline_store.BaselineStore.observe` for those alone), so an
attacker cannot teach it that blocked behaviour is normal. Memory is bounded: at most
``max_tools`` tools and ``max_shapes_per_tool`` shapes per tool are remembered; calls
beyond those bounds still count towards the totals. Hours are kept as a 168-bucket
hour-of-week histogram in UTC (Monday 00:00 = bucket 0); the call rate as an
exponentially weighted mean of calls per active minute.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HOURS_PER_WEEK = 168


def hour_of_week(ts: float) -> int:
    """The UTC hour-of-week (0 = Monday 00:00-00:59) of epoch seconds ``ts``."""
    # 1970-01-01 was a Thursday: day 0 of the epoch is weekday 3.
    return int((ts // 3600 + 72) % HOURS_PER_WEEK)


class BaselineConfig(BaseModel):
    """Bounds and keying of the baselines.

    ``key``: ``principal`` learns one baseline per user-and-agent pair; ``agent`` one per
    agent (within a tenant) across users -- faster warm-up, less specific. Principals
    without an agent always fall back to the principal key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: Literal["principal", "agent"] = "principal"
    max_tools: int = Field(default=256, ge=1)
    max_shapes_per_tool: int = Field(default=64, ge=1)
    rate_alpha: float = Field(default=0.1, gt=0, le=1)
    """Weight of the newest completed minute in the mean calls-per-minute."""
    flush_interval_s: float = Field(default=5.0, ge=0)
    """How often :func:`open_baseline_store` writes changed baselines (0: only on exit)."""


class AgentBaseline:
    """The learned behaviour of one agent (see the module docstring)."""

    __slots__ = (
        "calls",
        "first_ts",
        "hours",
        "last_ts",
        "rate_count",
        "rate_mean",
        "rate_minute",
        "rate_minutes",
        "shapes",
        "tools",
    )

    def __init__(self) -> None:
        self.calls = 0
        self.tools: dict[str, int] = {}
        self.shapes: dict[str, set[str]] = {}
        self.hours = [0] * HOURS_PER_WEEK
        self.rate_minute = -1
        self.rate_count = 0
        self.rate_mean = 0.0
        self.rate_minutes = 0
        self.first_ts = 0.0
        self.last_ts = 0.0

    def observe(self, tool: str, shape: str, ts: float, config: BaselineConfig) -> None:
        """Learn one forwarded call of ``tool`` with argument ``shape`` at epoch ``ts``."""
        if self.calls == 0:
            self.first_ts = ts
        self.calls += 1
        self.last_ts = max(self.last_ts, ts)
        if tool in self.tools:
            self.tools[tool] += 1
        elif len(self.tools) < config.max_tools:
            self.tools[tool] = 1
        shapes = self.shapes.get(tool)
        if shapes is None and tool in self.tools:
            shapes = self.shapes[tool] = set()
        if shapes is not None and len(shapes) < config.max_shapes_per_tool:
            shapes.add(shape)
        self.hours[hour_of_week(ts)] += 1
        minute = int(ts // 60)
        if minute == self.rate_minute:
            self.rate_count += 1
        elif minute > self.rate_minute:
            self._fold(config.rate_alpha)
            self.rate_minute = minute
            self.rate_count = 1

    def _fold(self, alpha: float) -> None:
        if self.rate_count == 0:
            return
        if self.rate_minutes == 0:
            self.rate_mean = float(self.rate_count)
        else:
            self.rate_mean += alpha * (self.rate_count - self.rate_mean)
        self.rate_minutes += 1

    def tool_count(self, tool: str) -> int:
        return self.tools.get(tool, 0)

    def knows_shape(self, tool: str, shape: str) -> bool:
        shapes = self.shapes.get(tool)
        return shapes is not None and shape in shapes

    def hour_count(self, how: int, spread: int = 1) -> int:
        """Calls observed in hour-of-week ``how`` and the ``spread`` hours either side."""
        hours = self.hours
        if spread == 1:
            return hours[how - 1] + hours[how] + hours[(how + 1) % HOURS_PER_WEEK]
        return sum(hours[(how + d) % HOURS_PER_WEEK] for d in range(-spread, spread + 1))

    def typical_per_minute(self) -> float:
        """Mean calls per active minute (the current minute alone before one has completed)."""
        if self.rate_minutes == 0:
            return float(self.rate_count)
        return self.rate_mean

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "calls": self.calls,
            "tools": self.tools,
            "shapes": {tool: sorted(s) for tool, s in self.shapes.items()},
            "hours": self.hours,
            "rate": [self.rate_minute, self.rate_count, self.rate_mean, self.rate_minutes],
            "span": [self.first_ts, self.last_ts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentBaseline:
        """Rebuild a baseline from :meth:`to_json` output.

        Raises:
            ValueError: ``data`` is not a version-1 baseline.
        """
        if data.get("v") != 1:
            raise ValueError(f"unsupported baseline version {data.get('v')!r}")
        out = cls()
        out.calls = int(data["calls"])
        out.tools = {str(k): int(v) for k, v in data["tools"].items()}
        out.shapes = {str(k): {str(s) for s in v} for k, v in data["shapes"].items()}
        hours = [int(h) for h in data["hours"]]
        if len(hours) != HOURS_PER_WEEK:
            raise ValueError(f"baseline has {len(hours)} hour buckets, expected {HOURS_PER_WEEK}")
        out.hours = hours
        minute, count, mean, minutes = data["rate"]
        out.rate_minute, out.rate_count, out.rate_mean, out.rate_minutes = (
            int(minute),
            int(count),
            float(mean),
            int(minutes),
        )
        out.first_ts, out.last_ts = (float(x) for x in data["span"])
        return out
