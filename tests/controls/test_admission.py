"""The limits stage's question: rate limits, budgets and breakers asked together."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mcp_guard.controls import Controls, Instant
from mcp_guard.decision import Decision
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.governance import LimitsStage
from mcp_guard.upstreams.catalog import Route
from tests.controls.controls_support import at, call, config, who

pytestmark = pytest.mark.anyio

BREAKER = {"id": "bank-breaker", "upstreams": ["bank"], "consecutive_failures": 1, "open_for": "30s"}


async def open_breaker(c: Controls) -> None:
    assert await c.breaker_check(call(), 0.0) is None
    await c.record_outcome(call(), True, 0.0)


class StoppedClock:
    """Both clocks stand still at ``instant``."""

    def __init__(self, instant: Instant) -> None:
        self.instant = instant

    def now(self) -> Instant:
        return self.instant

    def monotonic(self) -> float:
        return self.instant.monotonic


def tool_call() -> ToolCall:
    return ToolCall(
        principal=who(),
        session_id="s-1",
        tool="bank__pay",
        arguments={},
        received_at=datetime(2026, 6, 15, 12, tzinfo=UTC),
        route=Route("bank", "pay"),
    )


async def test_an_exceeded_warn_limit_does_not_let_a_call_past_an_open_breaker() -> None:
    c = Controls(
        config(
            limits=[{"id": "soft", "rate": "1/minute", "decision": "WARN"}],
            breakers=[BREAKER],
        )
    )
    await open_breaker(c)
    assert (await c.admit(call(), at(1.0))).verdict is not None  # the breaker refuses; token back
    assert await c.check(call(), at(1.0)) is None  # the token was given back
    assert (await c.check(call(), at(1.0))) is not None  # now the WARN limit is exceeded

    verdict = (await c.admit(call(), at(2.0))).verdict

    assert verdict is not None and verdict.decision is Decision.BLOCK
    assert verdict.rules == ("bank-breaker",)


async def test_the_limits_stage_stops_a_call_at_an_open_breaker_while_a_warn_limit_is_exceeded() -> None:
    c = Controls(
        config(limits=[{"id": "soft", "rate": "1/minute", "decision": "WARN"}], breakers=[BREAKER]),
        clock=StoppedClock(at(1.0)),
    )
    assert await c.check(call(), at(0.0)) is None  # the one token is used up
    await open_breaker(c)

    verdict = await LimitsStage(c)(tool_call())

    assert verdict is not None and verdict.rules == ("bank-breaker",)


async def test_a_call_an_open_breaker_refuses_is_charged_to_no_budget_or_rate_limit() -> None:
    c = Controls(
        config(
            limits=[{"id": "per-minute", "rate": "1/minute"}],
            budgets=[{"id": "daily", "period": "day", "max_calls": 1}],
            breakers=[BREAKER],
        )
    )
    await open_breaker(c)
    refused = (await c.admit(call(), at(1.0))).verdict
    assert refused is not None and refused.rules == ("bank-breaker",)

    assert (await c.admit(call(), at(31.0))).verdict is None  # the probe has its token and budget


async def test_a_withdrawn_admission_gives_back_its_budget_charge_but_not_its_rate_limit_token() -> None:
    c = Controls(
        config(
            limits=[{"id": "per-minute", "rate": "1/minute"}],
            budgets=[{"id": "daily", "period": "day", "max_calls": 1}],
        )
    )
    admitted = await c.admit(call(), at(0.0))
    assert admitted.verdict is None

    await c.withdraw(admitted)

    limited = await c.check(call(), at(1.0))
    assert limited is not None and limited.rules == ("per-minute",)  # the attempt still counts
    assert await c.check(call(), at(60.0)) is None  # and the budget has its one call back


async def test_withdrawing_twice_gives_back_once() -> None:
    c = Controls(config(budgets=[{"id": "daily", "period": "day", "max_calls": 2}]))
    assert (await c.admit(call(), at(0.0))).verdict is None
    admitted = await c.admit(call(), at(0.0))

    await c.withdraw(admitted)
    await c.withdraw(admitted)

    assert await c.check(call(), at(0.0)) is None
    assert await c.check(call(), at(0.0)) is not None


async def test_a_withdrawn_half_open_probe_lets_the_next_probe_through_at_once() -> None:
    c = Controls(config(breakers=[BREAKER]))
    await open_breaker(c)
    probe = await c.admit(call(), at(30.0))
    assert probe.verdict is None and probe.breakers
    assert (await c.admit(call(), at(31.0))).verdict is not None  # one probe at a time

    await c.withdraw(probe)  # the probe was refused later, or cancelled before it was sent

    assert (await c.admit(call(), at(31.0))).verdict is None


async def test_a_probe_permit_from_an_earlier_opening_is_not_given_back() -> None:
    c = Controls(config(breakers=[{**BREAKER, "half_open_probes": 1}]))
    await open_breaker(c)
    stale = await c.admit(call(), at(30.0))
    late = await c.admit(call(), at(61.0))  # the first probe was lost: its permit lapsed
    assert late.verdict is None
    await c.record_outcome(call(), True, 61.0)  # the second probe failed: open again
    fresh = await c.admit(call(), at(91.0))
    assert fresh.verdict is None

    await c.withdraw(stale)

    assert (await c.admit(call(), at(92.0))).verdict is not None  # still one probe at a time


async def test_a_call_a_second_breaker_refuses_gives_back_the_first_breakers_probe_permit() -> None:
    per_tool = {"id": "tool-breaker", "upstreams": ["bank"], "per": "tool", "consecutive_failures": 1}
    c = Controls(config(breakers=[BREAKER, {**per_tool, "open_for": "60s"}]))
    await open_breaker(c)  # opens both at 0.0
    refused = await c.admit(call(), at(30.0))  # bank-breaker half-open, tool-breaker still open
    assert refused.verdict is not None and refused.verdict.rules == ("tool-breaker",)

    probe = await c.admit(call("bank__other"), at(30.0))  # another tool: only bank-breaker applies

    assert probe.verdict is None
