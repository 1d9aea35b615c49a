"""stdio: every request asks whether ``MCP_GUARD_TOKEN`` has expired, through the SDK session
and through the stdio lane, and an expired token forwards nothing. Real gateway, real upstream
process; the wall clock is a fake one, moved by the test."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from mcp_guard.gateway import Gateway
from mcp_guard.identity import StdioIdentity
from mcp_guard.principal import Principal
from mcp_guard.stdio_lane import StdioCallLane
from mcp_guard.stdio_wire import StdoutPipe
from mcp_guard.transports import stdio_principal
from mcp_guard.upstreams.supervisor import Status
from tests.harness import (
    FAST_BACKOFF,
    behaviour_upstream,
    gateway_client,
    wait_for_status,
    with_private_state,
)
from tests.stdio_peer import ENVELOPE

pytestmark = pytest.mark.anyio

EXP = 1_900_000_000
LEEWAY = 30
EXPIRED = (
    "MCP_GUARD_TOKEN does not hold a valid token: token has expired; issue a new one with "
    "`mcp-guard token issue` and start mcp-guard again with it"
)
INVALID_REQUEST = -32600


class WallClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def alice_until_exp(clock: WallClock) -> StdioIdentity:
    return StdioIdentity(Principal(user="alice"), expires_at=EXP, leeway_s=LEEWAY, wall_clock=clock)


def forwarded(tmp_path: Path) -> list[str]:
    """The ids the behaviour upstream's ``record`` tool was called with."""
    path = tmp_path / "forwarded.txt"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


async def test_after_expiry_every_request_through_the_sdk_session_is_refused_and_nothing_is_forwarded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = WallClock(EXP + LEEWAY - 1)
    current = stdio_principal(alice_until_exp(clock))
    async with gateway_client(behaviour_upstream(tmp_path), resolve_principal=lambda ctx: current()) as (
        _,
        client,
    ):
        assert "beh__record" in {t.name for t in (await client.list_tools()).tools}
        assert not (await client.call_tool("beh__record", {"id": "before"})).is_error
        clock.now = EXP + LEEWAY
        requests: dict[str, Callable[[], Awaitable[Any]]] = {
            "tools/list": client.list_tools,
            "tools/call": lambda: client.call_tool("beh__record", {"id": "after"}),
            "resources/list": client.list_resources,
            "resources/templates/list": client.list_resource_templates,
            "resources/read": lambda: client.read_resource("memo://readme"),
            "prompts/list": client.list_prompts,
            "prompts/get": lambda: client.get_prompt("beh__greet", {"who": "Ada"}),
        }
        for method, request in requests.items():
            with pytest.raises(MCPError) as caught:
                await request()
            error = caught.value.error
            assert (method, error.code, error.message, error.data) == (
                method,
                INVALID_REQUEST,
                EXPIRED,
                {"error": "invalid_token"},
            )
    assert forwarded(tmp_path) == ["before"]
    refusals = [r.getMessage() for r in caplog.records if "refusing every request" in r.getMessage()]
    assert refusals == [f"refusing every request from now on: {EXPIRED}"]  # logged once


@asynccontextmanager
async def lane_for(
    tmp_path: Path, principal: Callable[[], Principal]
) -> AsyncIterator[Callable[[int, str], Awaitable[dict[str, Any]]]]:
    """A stdio lane in front of a real gateway, written to through a pipe; yields
    ``call(request_id, record_id)``, which sends a 2026-era ``tools/call`` of
    ``beh__record`` and returns the lane's answer."""
    gateway = Gateway(behaviour_upstream(tmp_path), with_private_state(None), backoff=FAST_BACKOFF)
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    received = bytearray()

    async def answer() -> dict[str, Any]:
        while b"\n" not in received:
            await anyio.wait_readable(read_fd)
            received.extend(os.read(read_fd, 1 << 16))
        line, _, rest = bytes(received).partition(b"\n")
        received[:] = rest
        message: dict[str, Any] = json.loads(line)
        return message

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(gateway.run)
            await wait_for_status(gateway, "beh", Status.READY)
            send, lines = anyio.create_memory_object_stream[str](8)
            async with anyio.create_task_group() as calls:
                lane = StdioCallLane(
                    gateway, principal, "s-1", StdoutPipe(write_fd), calls, server_info={"name": "t"}
                )

                async def read_lines() -> None:
                    async for line in lane.lines(lines):
                        raise AssertionError(f"the lane left a tools/call to the SDK: {line}")

                calls.start_soon(read_lines)

                async def call(request_id: int, record_id: str) -> dict[str, Any]:
                    params = {"name": "beh__record", "arguments": {"id": record_id}, "_meta": ENVELOPE}
                    message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
                    await send.send(json.dumps(message))
                    with anyio.fail_after(30):
                        return await answer()

                yield call
                send.close()
            tg.cancel_scope.cancel()
    finally:
        os.close(read_fd)
        os.close(write_fd)


async def test_after_expiry_the_stdio_lane_refuses_a_call_and_forwards_nothing(tmp_path: Path) -> None:
    clock = WallClock(EXP + LEEWAY - 1)
    async with lane_for(tmp_path, stdio_principal(alice_until_exp(clock))) as call:
        before = await call(1, "before")
        assert before["id"] == 1 and before["result"]["isError"] is False
        clock.now = EXP + LEEWAY
        after = await call(2, "after")
    assert after == {
        "jsonrpc": "2.0",
        "id": 2,
        "error": {"code": INVALID_REQUEST, "message": EXPIRED, "data": {"error": "invalid_token"}},
    }
    assert forwarded(tmp_path) == ["before"]
