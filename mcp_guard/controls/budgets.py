"""Calendar budgets: calls and cost units per hour, day, week or month in a time zone.

Periods are aligned to the local calendar of the budget's IANA zone (``Europe/Berlin``
days start at local midnight, whatever the UTC offset that day; a DST day lasts 23 or
25 hours). A counter is keyed by its period's start, so a new period starts from zero
without any reset job. Weeks start on Monday (ISO 8601).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from mcp_guard.controls.config import BudgetSpec
from mcp_guard.controls.keys import GlobMatcher, glob_matcher
from mcp_guard.controls.ratelimit import scope_matcher
from mcp_guard.decision import Decision, Verdict

Period = Literal["hour", "day", "week", "month"]


def period_window(period: Period, tz: ZoneInfo, at: datetime) -> tuple[datetime, datetime]:
    """The ``[start, end)`` of the period containing ``at`` (aware), as aware local datetimes.

    Raises:
        ValueError: ``at`` is naive.
    """
    if at.tzinfo is None:
        raise ValueError("budget clock must give aware datetimes")
    local = at.astimezone(tz)
    if period == "hour":
        # Real hours, so the repeated hour of a DST fall-back is two periods.
        start_utc = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return start_utc.astimezone(tz), (start_utc + timedelta(hours=1)).astimezone(tz)
    day = local.date()
    if period == "day":
        first, nxt = day, day + timedelta(days=1)
    elif period == "week":
        first = day - timedelta(days=day.weekday())
        nxt = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
    return (
        datetime(first.year, first.month, first.day, tzinfo=tz),
        datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz),
    )


class _Window:
    """The current period, cached so the hot path is one float comparison."""

    __slots__ = ("end", "end_iso", "period", "start", "tz")

    def __init__(self, period: Period, tz: ZoneInfo) -> None:
        self.period = period
        self.tz = tz
        self.start = self.end = 0.0
        self.end_iso = ""

    def at(self, wall: datetime) -> tuple[float, float, str]:
        ts = wall.timestamp()
        if not (self.start <= ts < self.end):
            start, end = period_window(self.period, self.tz, wall)
            self.start, self.end, self.end_iso = start.timestamp(), end.timestamp(), end.isoformat()
        return self.start, self.end, self.end_iso


class CostError(ValueError):
    """The cost of a call cannot be determined from its arguments."""


def _lookup(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    if len(path) == 1:
        return arguments[path[0]]
    value: Any = arguments
    for part in path:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(part)
    return value


class Budget:
    """A compiled ``budgets:`` item."""

    __slots__ = ("arg_path", "matches_tool", "matches_upstream", "per_tool", "scope", "spec", "window")

    def __init__(self, spec: BudgetSpec) -> None:
        self.spec = spec
        self.matches_tool: GlobMatcher = glob_matcher(spec.tools)
        self.matches_upstream: GlobMatcher = glob_matcher(spec.upstreams)
        self.scope = scope_matcher(spec.scope)
        self.window = _Window(spec.period, ZoneInfo(spec.tz))
        per_tool = spec.cost.per_tool if spec.cost is not None else None
        self.per_tool = [(glob_matcher([g]), c) for g, c in per_tool.items()] if per_tool else None
        arg = spec.cost.arg if spec.cost is not None else None
        self.arg_path = tuple(arg.split(".")) if arg else ()

    def cost_of(self, tool: str, arguments: Mapping[str, Any], call_cost: float | None) -> float:
        """Cost units of one call.

        With no ``cost`` configured the gateway-supplied ``call_cost`` is used, else 1.

        Raises:
            CostError: the cost argument is missing (and has no default), not a number, or negative.
        """
        spec = self.spec.cost
        if spec is None:
            return 1.0 if call_cost is None else call_cost
        if spec.fixed is not None:
            return spec.fixed
        if self.per_tool is not None:
            return next((c for match, c in self.per_tool if match(tool)), 1.0)
        try:
            raw = _lookup(arguments, self.arg_path)
        except KeyError:
            if spec.default is None:
                raise CostError(f"argument '{spec.arg}' that sets its cost is missing") from None
            return spec.default
        if isinstance(raw, bool) or not isinstance(raw, int | float) or math.isnan(raw) or raw < 0:
            raise CostError(f"argument '{spec.arg}' must be a non-negative number, got {raw!r}")
        if raw == float("inf"):
            raise CostError(f"argument '{spec.arg}' must be finite")
        return float(raw) * spec.scale

    def never_fits(self, cost: float) -> bool:
        """Whether a call of ``cost`` would be refused even in a period with nothing used."""
        spec = self.spec
        return (spec.max_calls is not None and spec.max_calls < 1) or (
            spec.max_cost is not None and cost > spec.max_cost
        )

    def never_fits_refusal(self, label: str, cost: float) -> Verdict:
        """The refusal of a call no period can hold: no ``retry_after``, since waiting will not help.

        A budget whose ``decision`` is APPROVAL_REQUIRED blocks it instead: no approval can
        make it fit, so no human should be asked. WARN and MONITOR_ONLY keep their decision.
        """
        spec = self.spec
        decision = Decision.BLOCK if spec.decision is Decision.APPROVAL_REQUIRED else spec.decision
        if spec.max_calls is not None and spec.max_calls < 1:
            why = f"the budget allows {spec.max_calls} calls per {spec.period}"
        else:
            why = f"it costs {cost:g} cost units and the budget allows {spec.max_cost:g} per {spec.period}"
        return Verdict(
            decision=decision,
            rules=(spec.id,),
            reason=(
                f"Budget '{spec.id}' ({spec.period}) can never admit this call for {label}: {why}; "
                "waiting for the reset will not help."
            ),
            details={
                "control": "budget",
                "never_fits": True,
                "key": label,
                "max_calls": spec.max_calls,
                "max_cost": spec.max_cost,
                "call_cost": cost,
            },
        )

    def refusal(
        self, label: str, *, calls: int, cost: float, this_cost: float, reset_iso: str, retry_after: float
    ) -> Verdict:
        spec = self.spec
        parts = []
        if spec.max_calls is not None:
            parts.append(
                f"{calls} of {spec.max_calls} calls used ({max(spec.max_calls - calls, 0)} remaining)"
            )
        if spec.max_cost is not None:
            left = max(spec.max_cost - cost, 0.0)
            parts.append(
                f"{cost:g} of {spec.max_cost:g} cost units used "
                f"({left:g} remaining, this call costs {this_cost:g})"
            )
        return Verdict(
            decision=spec.decision,
            rules=(spec.id,),
            reason=(
                f"Budget '{spec.id}' ({spec.period}) exhausted for {label}: "
                f"{'; '.join(parts)}; resets at {reset_iso}."
            ),
            details={
                "control": "budget",
                "retry_after": round(retry_after, 3),
                "key": label,
                "calls_used": calls,
                "max_calls": spec.max_calls,
                "cost_used": cost,
                "max_cost": spec.max_cost,
                "call_cost": this_cost,
                "resets_at": reset_iso,
            },
        )

    def unrecorded_refusal(self, label: str, message: str) -> Verdict:
        # Fail closed whatever the configured decision: a charge the state could not store.
        return Verdict(
            decision=Decision.BLOCK,
            rules=(self.spec.id,),
            reason=(
                f"Budget '{self.spec.id}' could not record this call's charge ({message}); "
                "the call was not forwarded."
            ),
            details={"control": "budget", "key": label},
        )

    def cost_refusal(self, message: str) -> Verdict:
        # Fail closed whatever the configured decision: an unpriced call is not counted.
        return Verdict(
            decision=Decision.BLOCK,
            rules=(self.spec.id,),
            reason=f"Budget '{self.spec.id}' cannot price this call: {message}.",
            details={"control": "budget"},
        )
