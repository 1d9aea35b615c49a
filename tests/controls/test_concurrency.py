from __future__ import annotations

import anyio
import pytest

from mcp_guard.controls import ConcurrencyRefused, Controls
from mcp_guard.decision import Decision
from tests.controls.controls_support import call, controls, who

pytestmark = pytest.mark.anyio

CAP = {"id": "bank-inflight", "upstreams": ["bank"], "per": ["agent"], "max": 2}


async def in_flight(c: Controls) -> int:
    return sum(
        [await c.state.slot_count(k) for k in ("bank-inflight|agent=bot", "bank-inflight|agent=other")]
    )


async def test_a_full_cap_refuses_at_once_and_frees_slots_on_exit() -> None:
    c = controls(concurrency=[CAP])
    async with c.concurrency(call()) as one, c.concurrency(call()):
        assert one.keys == ("bank-inflight|agent=bot",)
        with pytest.raises(ConcurrencyRefused) as refused:
            async with c.concurrency(call()):
                pass
        verdict = refused.value.verdict
        assert verdict.decision is Decision.BLOCK and verdict.rules == ("bank-inflight",)
        assert "2 calls already in flight" in verdict.reason
        async with c.concurrency(call(principal=who(agent="other"))):
            pass  # another agent has its own slots
    assert await in_flight(c) == 0
    async with c.concurrency(call()):
        pass


async def test_a_slot_is_released_when_the_call_raises() -> None:
    c = controls(concurrency=[{**CAP, "max": 1}])
    with pytest.raises(RuntimeError):
        async with c.concurrency(call()):
            raise RuntimeError("upstream broke")
    assert await in_flight(c) == 0


async def test_a_slot_is_released_when_the_call_is_cancelled() -> None:
    c = controls(concurrency=[{**CAP, "max": 1}])
    entered = anyio.Event()

    async def forward() -> None:
        async with c.concurrency(call()):
            entered.set()
            await anyio.Event().wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(forward)
            await entered.wait()
            assert await in_flight(c) == 1
            tg.cancel_scope.cancel()
    assert await in_flight(c) == 0


async def test_a_cap_with_wait_admits_the_call_when_a_slot_is_released() -> None:
    c = controls(concurrency=[{**CAP, "max": 1, "wait": "5s"}])
    release = anyio.Event()
    holding = anyio.Event()

    async def holder() -> None:
        async with c.concurrency(call()):
            holding.set()
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await holding.wait()
            tg.start_soon(lambda: _set_soon(release))
            async with c.concurrency(call()) as slot:
                assert slot.keys == ("bank-inflight|agent=bot",)
    assert await in_flight(c) == 0


async def _set_soon(event: anyio.Event) -> None:
    await anyio.lowlevel.checkpoint()
    event.set()


async def test_a_cap_with_wait_refuses_after_the_bound() -> None:
    c = controls(concurrency=[{**CAP, "max": 1, "wait": 0.02}])
    with anyio.fail_after(5):
        async with c.concurrency(call()):
            with pytest.raises(ConcurrencyRefused) as refused:
                async with c.concurrency(call()):
                    pass
    assert "waited" in refused.value.verdict.reason


async def test_a_refusal_by_a_second_cap_gives_back_the_first_caps_slot() -> None:
    c = controls(
        concurrency=[
            {"id": "wide", "max": 5},
            {"id": "narrow", "tools": ["bank__pay"], "max": 1},
        ]
    )
    async with c.concurrency(call("bank__pay")):
        with pytest.raises(ConcurrencyRefused):
            async with c.concurrency(call("bank__pay")):
                pass
        assert await c.state.slot_count("wide|") == 1


async def test_calls_without_a_matching_cap_get_an_empty_slot() -> None:
    c = controls(concurrency=[CAP])
    async with c.concurrency(call("search__web")) as slot:
        assert slot.keys == ()
