from __future__ import annotations

from typing import Any

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


class Holder:
    """A call holding a slot of ``controls`` until ``release`` is set."""

    def __init__(self, c: Controls, tool: str = "bank__pay") -> None:
        self.c, self.tool = c, tool
        self.holding, self.release = anyio.Event(), anyio.Event()

    async def run(self) -> None:
        async with self.c.concurrency(call(self.tool)):
            self.holding.set()
            await self.release.wait()


async def waiter_admitted(c: Controls, admitted: anyio.Event, refused: list[ConcurrencyRefused]) -> None:
    try:
        async with c.concurrency(call()):
            admitted.set()
    except ConcurrencyRefused as exc:
        refused.append(exc)
        admitted.set()


@pytest.mark.parametrize(
    "successor", [[{**CAP, "max": 2, "wait": "1h"}], []], ids=["raises-the-cap", "removes-the-cap"]
)
async def test_a_call_waiting_for_a_slot_is_admitted_when_a_reload_raises_or_removes_the_cap(
    successor: list[dict[str, Any]],
) -> None:
    old = controls(concurrency=[{**CAP, "max": 1, "wait": "1h"}])
    holder, admitted, refused = Holder(old), anyio.Event(), []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(holder.run)
            await holder.holding.wait()
            tg.start_soon(waiter_admitted, old, admitted, refused)
            await anyio.wait_all_tasks_blocked()

            old.hand_over(controls(old.state, concurrency=successor))

            await admitted.wait()  # while the holder still holds its slot
            assert refused == [] and not holder.release.is_set()
            holder.release.set()
    assert await in_flight(old) == 0


async def test_a_call_waiting_for_a_slot_keeps_to_the_lower_cap_of_a_reload() -> None:
    old = controls(concurrency=[{**CAP, "max": 2, "wait": "1h"}])
    first, second, admitted, refused = Holder(old), Holder(old), anyio.Event(), []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for holder in (first, second):
                tg.start_soon(holder.run)
                await holder.holding.wait()
            tg.start_soon(waiter_admitted, old, admitted, refused)
            await anyio.wait_all_tasks_blocked()
            old.hand_over(controls(old.state, concurrency=[{**CAP, "max": 1, "wait": "1h"}]))

            first.release.set()
            await anyio.wait_all_tasks_blocked()
            assert not admitted.is_set() and await in_flight(old) == 1  # one in flight is the new cap

            second.release.set()
            await admitted.wait()
    assert refused == []


async def test_a_call_waiting_for_a_slot_is_refused_at_once_when_a_reload_stops_the_waiting() -> None:
    old = controls(concurrency=[{**CAP, "max": 1, "wait": "1h"}])
    holder, admitted, refused = Holder(old), anyio.Event(), []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(holder.run)
            await holder.holding.wait()
            tg.start_soon(waiter_admitted, old, admitted, refused)
            await anyio.wait_all_tasks_blocked()

            old.hand_over(controls(old.state, concurrency=[{**CAP, "max": 1, "wait": 0}]))

            await admitted.wait()
            holder.release.set()
    assert [r.verdict.rules for r in refused] == [("bank-inflight",)]
    assert "1 calls already in flight (waited" in refused[0].verdict.reason


async def test_controls_cannot_hand_over_to_controls_on_another_state() -> None:
    with pytest.raises(ValueError, match="same control state"):
        controls(concurrency=[CAP]).hand_over(controls(concurrency=[CAP]))
