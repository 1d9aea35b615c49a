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
    assert await c.admit(call(), at(1.0)) is not None  # takes the one token; the breaker refuses
    assert await c.check(call(), at(1.0)) is None  # the token was given back
    assert (await c.check(call(), at(1.0))) is not None  # now the WARN limit is exceeded

    verdict = await c.admit(call(), at(2.0))

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
    refused = await c.admit(call(), at(1.0))
    assert refused is not None and refused.rules == ("bank-breaker",)

    assert await c.admit(call(), at(31.0)) is None  # the probe still has its token and budget
