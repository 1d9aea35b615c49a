from __future__ import annotations

import pytest

from mcp_guard.controls import BreakerState, BreakerTransition, Controls
from mcp_guard.decision import Decision
from tests.controls.controls_support import at, call, config

pytestmark = pytest.mark.anyio

UPSTREAM = {"id": "bank-breaker", "upstreams": ["bank"], "consecutive_failures": 3, "open_for": "30s"}


def breaker(**overrides: object) -> tuple[Controls, list[BreakerTransition]]:
    changes: list[BreakerTransition] = []
    c = Controls(config(breakers=[{**UPSTREAM, **overrides}]), on_breaker_change=changes.append)
    return c, changes


async def fail(c: Controls, n: int, now: float, tool: str = "bank__pay") -> None:
    for _ in range(n):
        assert await c.breaker_check(call(tool), now) is None
        await c.record_outcome(call(tool), True, now)


async def test_the_breaker_opens_after_consecutive_failures_and_fails_fast() -> None:
    c, changes = breaker()
    await fail(c, 3, 0.0)
    verdict = await c.breaker_check(call(), 10.0)
    assert verdict is not None and verdict.decision is Decision.BLOCK
    assert verdict.rules == ("bank-breaker",)
    assert verdict.details == {"control": "circuit_breaker", "retry_after": 20.0, "target": "bank"}
    assert [(t.old, t.new) for t in changes] == [(BreakerState.CLOSED, BreakerState.OPEN)]
    assert changes[0].target == "bank" and "3 consecutive failures" in changes[0].reason


async def test_a_success_resets_the_consecutive_count() -> None:
    c, changes = breaker()
    await fail(c, 2, 0.0)
    await c.record_outcome(call(), False, 0.0)
    await fail(c, 2, 0.0)
    assert await c.breaker_check(call(), 0.0) is None
    assert changes == []


async def test_closed_open_half_open_closed() -> None:
    c, changes = breaker()
    await fail(c, 3, 0.0)
    assert await c.breaker_check(call(), 29.9) is not None
    assert await c.breaker_check(call(), 30.0) is None  # the probe
    assert await c.breaker_check(call(), 30.0) is not None  # only one probe at a time
    await c.record_outcome(call(), False, 31.0)
    assert await c.breaker_check(call(), 31.0) is None
    assert [t.new for t in changes] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_a_failed_probe_reopens_the_breaker_for_another_period() -> None:
    c, changes = breaker()
    await fail(c, 3, 0.0)
    assert await c.breaker_check(call(), 30.0) is None
    await c.record_outcome(call(), True, 32.0)
    verdict = await c.breaker_check(call(), 33.0)
    assert verdict is not None and verdict.details["retry_after"] == pytest.approx(29.0)
    assert [t.new for t in changes] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN]


async def test_half_open_admits_k_probes_and_a_lost_probe_frees_its_permit_later() -> None:
    c, _ = breaker(half_open_probes=2)
    await fail(c, 3, 0.0)
    assert await c.breaker_check(call(), 30.0) is None
    assert await c.breaker_check(call(), 30.0) is None
    assert await c.breaker_check(call(), 30.0) is not None
    assert await c.breaker_check(call(), 60.0) is None  # nobody reported; permits come back


async def test_the_error_rate_over_the_window_opens_the_breaker_after_min_calls() -> None:
    c, changes = breaker(consecutive_failures=None, error_rate=0.5, window="10s", min_calls=4)
    for i in range(3):  # alternating, but fewer than min_calls
        await c.record_outcome(call(), i % 2 == 0, float(i))
    assert await c.breaker_check(call(), 3.0) is None
    await c.record_outcome(call(), True, 3.0)  # 3 of 4 failed
    assert await c.breaker_check(call(), 3.0) is not None
    assert "3 of 4 calls failed" in changes[0].reason


async def test_failures_older_than_the_window_are_forgotten() -> None:
    c, changes = breaker(consecutive_failures=None, error_rate=0.5, window="10s", min_calls=4)
    await c.record_outcome(call(), True, 0.0)
    await c.record_outcome(call(), True, 1.0)
    for t in (20.0, 21.0, 22.0):
        await c.record_outcome(call(), t == 22.0, t)
    assert await c.breaker_check(call(), 22.0) is None
    assert changes == []


async def test_tool_errors_count_only_when_configured() -> None:
    c, _ = breaker()
    for _ in range(5):
        await c.record_outcome(call(), False, 0.0, tool_error=True)
    assert await c.breaker_check(call(), 0.0) is None
    c, _ = breaker(count_tool_errors=True)
    for _ in range(3):
        await c.record_outcome(call(), False, 0.0, tool_error=True)
    assert await c.breaker_check(call(), 0.0) is not None


async def test_per_tool_breakers_isolate_tools_of_one_upstream() -> None:
    c, _ = breaker(per="tool")
    await fail(c, 3, 0.0, "bank__pay")
    assert await c.breaker_check(call("bank__pay"), 1.0) is not None
    assert await c.breaker_check(call("bank__balance"), 1.0) is None


async def test_other_upstreams_are_not_affected() -> None:
    c, _ = breaker()
    await fail(c, 3, 0.0)
    assert await c.breaker_check(call("search__web"), 1.0) is None


async def test_snapshot_shows_state_and_time_to_next_probe() -> None:
    c, _ = breaker()
    await fail(c, 3, 0.0)
    (snap,) = await c.snapshot(12.0)
    assert snap.breaker == "bank-breaker" and snap.target == "bank"
    assert snap.state is BreakerState.OPEN
    assert snap.retry_after == pytest.approx(18.0)


async def test_a_breaker_ignores_the_outcome_of_a_call_admitted_while_it_was_closed() -> None:
    c, changes = breaker(consecutive_failures=1)
    slow = await c.admit(call(), at(0.0))  # admitted while closed; answers only later
    await fail(c, 1, 0.0)
    probe = await c.admit(call(), at(30.0))
    assert probe.verdict is None

    await c.record_outcome(call(), False, 31.0, admission=slow)

    assert (await c.admit(call(), at(31.0))).verdict is not None  # still half-open, probe in flight
    await c.record_outcome(call(), False, 32.0, admission=probe)
    assert [t.new for t in changes] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert changes[-1].at == 32.0


async def test_a_breaker_ignores_outcomes_of_probes_from_an_earlier_opening() -> None:
    c, changes = breaker(consecutive_failures=1, half_open_probes=2)
    await fail(c, 1, 0.0)
    stale = await c.admit(call(), at(30.0))
    failed = await c.admit(call(), at(30.0))
    await c.record_outcome(call(), True, 31.0, admission=failed)  # open again, from 31.0
    probe = await c.admit(call(), at(61.0))
    assert probe.verdict is None

    await c.record_outcome(call(), False, 62.0, admission=stale)  # the first opening's probe

    assert (await c.snapshot(62.0))[0].state is BreakerState.HALF_OPEN
    await c.record_outcome(call(), True, 63.0, admission=probe)
    assert [t.new for t in changes][-1] is BreakerState.OPEN and changes[-1].at == 63.0


async def test_a_probe_whose_permit_lapsed_no_longer_decides_the_breaker() -> None:
    c, _ = breaker(consecutive_failures=1)
    await fail(c, 1, 0.0)
    lapsed = await c.admit(call(), at(30.0))
    probe = await c.admit(call(), at(60.0))  # the first probe held its permit for open_for
    assert probe.verdict is None

    await c.record_outcome(call(), True, 61.0, admission=lapsed)

    assert (await c.snapshot(61.0))[0].state is BreakerState.HALF_OPEN
    await c.record_outcome(call(), False, 62.0, admission=probe)
    assert (await c.snapshot(62.0))[0].state is BreakerState.CLOSED


async def test_a_late_failure_of_a_call_admitted_before_the_breaker_last_closed_is_not_counted() -> None:
    c, changes = breaker(consecutive_failures=1)
    slow = await c.admit(call(), at(0.0))
    await fail(c, 1, 0.0)
    await c.record_outcome(call(), False, 31.0, admission=await c.admit(call(), at(30.0)))  # closed again

    await c.record_outcome(call(), True, 40.0, admission=slow)

    assert (await c.admit(call(), at(40.0))).verdict is None
    assert [t.new for t in changes] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_an_outcome_is_counted_once_per_admission() -> None:
    c, changes = breaker(consecutive_failures=2)
    admitted = await c.admit(call(), at(0.0))

    await c.record_outcome(call(), True, 1.0, admission=admitted)
    await c.record_outcome(call(), True, 1.0, admission=admitted)

    assert (await c.admit(call(), at(2.0))).verdict is None
    assert changes == []
