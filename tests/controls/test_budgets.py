from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mcp_guard.controls import ControlCall, Controls, open_embedded_state, period_window
from mcp_guard.decision import Decision
from tests.controls.controls_support import at, call, config, controls, who

pytestmark = pytest.mark.anyio

BERLIN = ZoneInfo("Europe/Berlin")
REFUNDS = {
    "id": "daily-refunds",
    "tools": ["bank__refund"],
    "per": ["user"],
    "period": "day",
    "tz": "Europe/Berlin",
    "max_calls": 3,
    "max_cost": 100,
    "cost": {"arg": "amount"},
}


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def refund(amount: object, user: str = "alice") -> ControlCall:
    return call("bank__refund", who(user=user), {"amount": amount})


async def test_calls_over_the_daily_maximum_are_blocked_with_remaining_and_reset_time() -> None:
    c = controls(budgets=[{**REFUNDS, "max_cost": None, "cost": None}])
    noon = berlin(2026, 6, 15, 12)
    for _ in range(3):
        assert await c.check(refund(1), at(0, noon)) is None
    verdict = await c.check(refund(1), at(0, noon))
    assert verdict is not None and verdict.decision is Decision.BLOCK
    assert verdict.rules == ("daily-refunds",)
    assert "3 of 3 calls used (0 remaining)" in verdict.reason
    assert "resets at 2026-06-16T00:00:00+02:00" in verdict.reason
    assert verdict.details["control"] == "budget"
    assert verdict.details["retry_after"] == pytest.approx(12 * 3600)


async def test_cost_is_taken_from_an_argument_and_a_call_that_would_overspend_is_refused() -> None:
    c = controls(budgets=[REFUNDS])
    noon = berlin(2026, 6, 15, 12)
    assert await c.check(refund(60), at(0, noon)) is None
    verdict = await c.check(refund(50), at(0, noon))
    assert verdict is not None
    assert "60 of 100 cost units used (40 remaining, this call costs 50)" in verdict.reason
    assert await c.check(refund(40), at(0, noon)) is None


@pytest.mark.parametrize("amount", [None, "12", -5, True, float("nan")])
async def test_a_call_whose_cost_argument_is_missing_or_invalid_is_blocked(amount: object) -> None:
    c = controls(budgets=[REFUNDS])
    args = {} if amount is None else {"amount": amount}
    verdict = await c.check(call("bank__refund", arguments=args), at(0))
    assert verdict is not None and verdict.decision is Decision.BLOCK
    assert "cannot price" in verdict.reason


async def test_fixed_and_per_tool_costs() -> None:
    c = controls(
        budgets=[
            {"id": "fixed", "tools": ["a__*"], "period": "day", "max_cost": 10, "cost": 5},
            {
                "id": "table",
                "tools": ["b__*"],
                "period": "day",
                "max_cost": 10,
                "cost": {"b__big": 10, "b__*": 1},
            },
        ]
    )
    assert await c.check(call("a__x"), at(0)) is None
    assert await c.check(call("a__x"), at(0)) is None
    assert await c.check(call("a__x"), at(0)) is not None
    assert await c.check(call("b__small"), at(0)) is None
    assert await c.check(call("b__big"), at(0)) is not None


async def test_gateway_supplied_cost_is_used_when_the_budget_sets_none() -> None:
    c = controls(budgets=[{"id": "units", "period": "hour", "max_cost": 10}])
    assert await c.check(call(cost=7), at(0)) is None
    assert await c.check(call(cost=7), at(0)) is not None


async def test_the_budget_resets_at_local_midnight_not_utc_midnight() -> None:
    c = controls(budgets=[{**REFUNDS, "max_calls": 1}])
    assert await c.check(refund(1), at(0, berlin(2026, 6, 15, 23, 59))) is None
    # 00:30 UTC on the 16th is already the 16th in Berlin
    assert await c.check(refund(1), at(0, datetime(2026, 6, 15, 21, 59, tzinfo=UTC))) is not None
    assert await c.check(refund(1), at(0, datetime(2026, 6, 15, 22, 0, tzinfo=UTC))) is None


def test_a_day_with_a_dst_change_lasts_23_or_25_hours() -> None:
    spring = period_window("day", BERLIN, berlin(2026, 3, 29, 12))
    autumn = period_window("day", BERLIN, berlin(2026, 10, 25, 12))
    assert spring[1].timestamp() - spring[0].timestamp() == 23 * 3600
    assert autumn[1].timestamp() - autumn[0].timestamp() == 25 * 3600
    assert spring[1].isoformat() == "2026-03-30T00:00:00+02:00"


async def test_a_budget_resets_across_the_dst_night_at_local_midnight() -> None:
    c = controls(budgets=[{**REFUNDS, "max_calls": 1}])
    before = berlin(2026, 3, 29, 23, 30)  # CEST, UTC+2
    assert await c.check(refund(1), at(0, before)) is None
    verdict = await c.check(refund(1), at(0, before))
    assert verdict is not None and verdict.details["resets_at"] == "2026-03-30T00:00:00+02:00"
    assert await c.check(refund(1), at(0, berlin(2026, 3, 30, 0, 0))) is None


def test_hourly_periods_follow_real_hours_through_the_repeated_autumn_hour() -> None:
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, same wall clock
    a = period_window("hour", BERLIN, first)
    b = period_window("hour", BERLIN, second)
    assert a[0].timestamp() != b[0].timestamp()
    assert b[0].timestamp() - a[0].timestamp() == 3600


async def test_a_monthly_budget_resets_on_the_first_of_the_month() -> None:
    c = controls(budgets=[{"id": "monthly", "period": "month", "tz": "America/New_York", "max_calls": 1}])
    ny = ZoneInfo("America/New_York")
    jan31 = datetime(2026, 1, 31, 23, 59, tzinfo=ny)
    assert await c.check(call(), at(0, jan31)) is None
    verdict = await c.check(call(), at(0, jan31))
    assert verdict is not None and verdict.details["resets_at"] == "2026-02-01T00:00:00-05:00"
    assert await c.check(call(), at(0, datetime(2026, 2, 1, 0, 0, tzinfo=ny))) is None
    dec = period_window("month", ny, datetime(2026, 12, 10, tzinfo=ny))
    assert dec[1].isoformat() == "2027-01-01T00:00:00-05:00"


def test_weeks_start_on_monday() -> None:
    start, end = period_window("week", BERLIN, berlin(2026, 6, 18, 9))  # a Thursday
    assert start.isoformat() == "2026-06-15T00:00:00+02:00"
    assert end.isoformat() == "2026-06-22T00:00:00+02:00"


async def test_per_user_budgets_are_independent() -> None:
    c = controls(budgets=[{**REFUNDS, "max_calls": 1}])
    assert await c.check(refund(1, "alice"), at(0)) is None
    assert await c.check(refund(1, "alice"), at(0)) is not None
    assert await c.check(refund(1, "bob"), at(0)) is None


async def test_a_call_refused_by_a_rate_limit_is_not_charged_to_the_budget() -> None:
    c = controls(
        limits=[{"id": "rl", "rate": "1/hour"}],
        budgets=[{"id": "b", "period": "day", "max_calls": 5}],
    )
    assert await c.check(call(), at(0)) is None
    assert await c.check(call(), at(0)) is not None
    usage = await c.state.counter_get("b|", period_window("day", ZoneInfo("UTC"), at(0).wall)[0].timestamp())
    assert usage.calls == 1


async def test_budgets_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    cfg = config(budgets=[{**REFUNDS, "max_calls": 2}])
    noon = berlin(2026, 6, 15, 12)
    wall = noon.timestamp
    async with open_embedded_state(db, flush_interval=3600, wall=wall) as state:
        c = Controls(cfg, state)
        assert await c.check(refund(10), at(0, noon)) is None
        assert await c.check(refund(10), at(0, noon)) is None
    async with open_embedded_state(db, flush_interval=3600, wall=wall) as state:
        c = Controls(cfg, state)
        verdict = await c.check(refund(10), at(5, noon))
        assert verdict is not None and "2 of 2 calls used" in verdict.reason
        assert "20 of 100 cost units" in verdict.reason
    next_day = berlin(2026, 6, 16, 1)
    async with open_embedded_state(db, flush_interval=3600, wall=next_day.timestamp) as state:
        assert state.counters == {}  # the ended period was dropped on load
        assert await Controls(cfg, state).check(refund(10), at(0, next_day)) is None


async def test_write_through_mode_persists_each_change_immediately(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    cfg = config(budgets=[{**REFUNDS, "max_calls": 1}])
    noon = berlin(2026, 6, 15, 12)
    async with open_embedded_state(db, flush_interval=0, wall=noon.timestamp) as state:
        await Controls(cfg, state).check(refund(1), at(0, noon))
        assert state._dirty == set()
        async with open_embedded_state(db, flush_interval=3600, wall=noon.timestamp) as other:
            assert sum(u.calls for u in other.counters.values()) == 1


async def test_a_call_that_costs_more_than_the_whole_budget_is_refused_as_never_fitting() -> None:
    c = controls(budgets=[REFUNDS])
    noon = berlin(2026, 6, 15, 12)

    verdict = await c.check(refund(150), at(0, noon))

    assert verdict is not None and verdict.decision is Decision.BLOCK
    assert verdict.reason == (
        "Budget 'daily-refunds' (day) can never admit this call for user alice: it costs 150 "
        "cost units and the budget allows 100 per day; waiting for the reset will not help."
    )
    assert "retry_after" not in verdict.details and verdict.details["never_fits"] is True
    assert "retry_after" not in verdict.meta(None)
    assert await c.check(refund(100), at(0, noon)) is None  # nothing was counted for it


async def test_a_budget_of_no_calls_refuses_every_call_as_never_fitting() -> None:
    c = controls(budgets=[{"id": "frozen", "period": "day", "max_calls": 0}])

    verdict = await c.check(call(), at(0))

    assert verdict is not None and "can never admit this call" in verdict.reason
    assert "allows 0 calls per day" in verdict.reason and "retry_after" not in verdict.details


async def test_a_budget_that_asks_for_approval_blocks_a_call_it_can_never_admit() -> None:
    c = controls(budgets=[{**REFUNDS, "decision": "APPROVAL_REQUIRED"}])
    noon = berlin(2026, 6, 15, 12)

    never = await c.check(refund(150), at(0, noon))
    assert await c.check(refund(60), at(0, noon)) is None
    exhausted = await c.check(refund(60), at(0, noon))

    assert never is not None and never.decision is Decision.BLOCK  # no approval can make it fit
    assert never.details["never_fits"] is True and "can never admit this call" in never.reason
    assert exhausted is not None and exhausted.decision is Decision.APPROVAL_REQUIRED


async def test_a_call_that_fits_only_an_empty_period_is_told_when_the_period_resets() -> None:
    c = controls(budgets=[REFUNDS])
    noon = berlin(2026, 6, 15, 12)
    assert await c.check(refund(60), at(0, noon)) is None

    verdict = await c.check(refund(100), at(0, noon))

    assert verdict is not None and "exhausted" in verdict.reason
    assert verdict.details["retry_after"] == pytest.approx(12 * 3600)
