"""The controls as the gateway applies them to real calls (behaviour upstream over stdio)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types

from mcp_guard.config.settings import GatewaySettings
from mcp_guard.controls import Instant
from mcp_guard.gateway import Gateway
from mcp_guard.principal import LOCAL_PRINCIPAL
from tests.harness import behaviour_upstream, gateway_client

pytestmark = pytest.mark.anyio


def decision(result: object) -> dict[str, Any]:
    assert isinstance(result, types.CallToolResult) and result.meta is not None
    found: dict[str, Any] = result.meta["mcp-guard/decision"]
    return found


def settings(**controls: list[dict[str, Any]]) -> GatewaySettings:
    return GatewaySettings.model_validate({"controls": controls})


def signal_when_forwarded(gateway: Gateway, upstream: str) -> anyio.Event:
    """An event set when the gateway hands a call to ``upstream`` (the real call still runs)."""
    forwarded = anyio.Event()
    target = gateway.upstreams[upstream]
    real = target.call_tool

    async def call_tool(*args: Any, **kwargs: Any) -> types.CallToolResult:
        forwarded.set()
        return await real(*args, **kwargs)

    target.call_tool = call_tool  # type: ignore[method-assign]
    return forwarded


class HandClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.mono = 0.0

    def now(self) -> Instant:
        return Instant(self.mono, datetime(2026, 6, 15, 12, tzinfo=UTC))

    def monotonic(self) -> float:
        return self.mono


def hold_until_released(gateway: Gateway, upstream: str) -> dict[str, tuple[anyio.Event, anyio.Event]]:
    """Echo calls whose text is a key of the returned dict are held before reaching ``upstream``:
    the first event is set when one arrives, the real call runs once the test sets the second."""
    gates: dict[str, tuple[anyio.Event, anyio.Event]] = {}
    target = gateway.upstreams[upstream]
    real = target.call_tool

    async def call_tool(name: str, arguments: dict[str, Any], **kwargs: Any) -> types.CallToolResult:
        gate = gates.get(str(arguments.get("text")))
        if gate is not None:
            gate[0].set()
            await gate[1].wait()
        return await real(name, arguments, **kwargs)

    target.call_tool = call_tool  # type: ignore[method-assign]
    return gates


async def test_a_slow_call_admitted_before_the_breaker_opened_does_not_close_it_while_it_probes(
    tmp_path: Path,
) -> None:
    breaker = {
        "id": "beh-breaker",
        "upstreams": ["beh"],
        "consecutive_failures": 1,
        "count_tool_errors": True,
        "open_for": 30,
    }
    async with gateway_client(behaviour_upstream(tmp_path), settings(breakers=[breaker])) as (
        gateway,
        client,
    ):
        assert gateway.controls is not None
        clock = gateway.controls.clock = HandClock()
        gates = hold_until_released(gateway, "beh")
        gates["slow"] = (anyio.Event(), anyio.Event())
        gates["probe"] = (anyio.Event(), anyio.Event())
        slow_answered = anyio.Event()

        async def slow_call() -> None:
            await client.call_tool("beh__echo", {"text": "slow"})
            slow_answered.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)  # admitted while the breaker is closed
                await gates["slow"][0].wait()
                await client.call_tool("beh__fail", {})  # opens the breaker
                clock.mono = 30.0
                tg.start_soon(client.call_tool, "beh__echo", {"text": "probe"})
                await gates["probe"][0].wait()
                gates["slow"][1].set()
                await slow_answered.wait()  # its success is recorded before the answer leaves
                while_probing = await client.call_tool("beh__echo", {"text": "unheld"})
                gates["probe"][1].set()
    assert decision(while_probing)["rules"] == ["beh-breaker"], decision(while_probing)["reason"]


async def test_a_call_its_client_cancels_is_not_counted_as_an_upstream_failure(tmp_path: Path) -> None:
    breaker = {"id": "beh-breaker", "upstreams": ["beh"], "consecutive_failures": 1, "open_for": 60}
    async with gateway_client(behaviour_upstream(tmp_path), settings(breakers=[breaker])) as (
        gateway,
        client,
    ):
        forwarded = signal_when_forwarded(gateway, "beh")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(gateway.call_tool, LOCAL_PRINCIPAL, "s-1", "beh__hang", {"tag": "gone"})
                await forwarded.wait()
                tg.cancel_scope.cancel()
            after = await client.call_tool("beh__echo", {"text": "x"})
    assert decision(after)["decision"] == "ALLOW", decision(after)["reason"]


async def test_a_call_a_full_concurrency_cap_refuses_is_not_charged_to_the_budget(tmp_path: Path) -> None:
    one_at_a_time = {"id": "beh-inflight", "upstreams": ["beh"], "max": 1}
    two_calls = {"id": "beh-daily", "upstreams": ["beh"], "period": "day", "max_calls": 2}
    upstreams = behaviour_upstream(tmp_path)
    async with gateway_client(upstreams, settings(concurrency=[one_at_a_time], budgets=[two_calls])) as (
        gateway,
        client,
    ):
        forwarded = signal_when_forwarded(gateway, "beh")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(gateway.call_tool, LOCAL_PRINCIPAL, "s-1", "beh__hang", {"tag": "held"})
                await forwarded.wait()
                refused = await client.call_tool("beh__echo", {"text": "while busy"})
                tg.cancel_scope.cancel()
            after = await client.call_tool("beh__echo", {"text": "x"})
    assert decision(refused)["rules"] == ["beh-inflight"]
    assert decision(after)["decision"] == "ALLOW", decision(after)["reason"]


async def test_a_call_waiting_for_a_concurrency_slot_is_admitted_when_a_policy_reload_raises_the_cap(
    tmp_path: Path,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    caps = policies / "caps.yaml"
    cap = "concurrency:\n  - {id: beh-inflight, upstreams: [beh], max: %d, wait: 1h}\n"
    caps.write_text("rules: []\n" + cap % 1, encoding="utf-8")
    async with gateway_client(behaviour_upstream(tmp_path), policy_dir=policies) as (gateway, client):
        forwarded = signal_when_forwarded(gateway, "beh")
        answered = anyio.Event()

        async def waiting_call() -> None:
            answer = await client.call_tool("beh__echo", {"text": "waited"})
            assert answer.structured_content == {"echo": "waited"}, decision(answer)["reason"]
            answered.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(gateway.call_tool, LOCAL_PRINCIPAL, "s-1", "beh__hang", {"tag": "held"})
                await forwarded.wait()
                tg.start_soon(waiting_call)
                await anyio.wait_all_tasks_blocked()
                caps.write_text("rules: []\n" + cap % 2, encoding="utf-8")

                assert await gateway.reload_policies("test") is None

                await answered.wait()  # while the hanging call still holds the first slot
                tg.cancel_scope.cancel()
