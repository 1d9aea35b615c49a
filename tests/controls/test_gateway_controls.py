"""The controls as the gateway applies them to real calls (behaviour upstream over stdio)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types

from mcp_guard.config.settings import GatewaySettings
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
