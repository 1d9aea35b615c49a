"""Supervision: crashes, reconnects, list changes, cancellation and timeouts with real upstreams."""

from __future__ import annotations

import os
import signal
from contextlib import suppress
from pathlib import Path

import anyio
import pytest
from mcp import types
from mcp.client.session import IncomingMessage

from mcp_guard.upstreams.supervisor import Status
from tests.harness import alive, behaviour_upstream, gateway_client, wait_for_status, write_upstreams

pytestmark = pytest.mark.anyio


async def test_a_crashed_upstream_fails_fast_naming_itself_then_comes_back(tmp_path: Path) -> None:
    async with gateway_client(behaviour_upstream(tmp_path)) as (gateway, client):
        upstream = gateway.upstreams["beh"]
        down = upstream.changed
        crashed = await client.call_tool("beh__crash", {})
        assert isinstance(crashed, types.CallToolResult) and crashed.is_error
        assert "upstream 'beh'" in crashed.content[0].text  # type: ignore[union-attr]
        with anyio.fail_after(10):
            await down.wait()
        if upstream.status is not Status.READY:
            # While it is down the tool stays listed and a call fails at once with a clear reason.
            names = {t.name for t in (await client.list_tools()).tools}
            assert "beh__echo" in names
        await wait_for_status(gateway, "beh", Status.READY)
        again = await client.call_tool("beh__echo", {"text": "back"})
        assert isinstance(again, types.CallToolResult) and again.structured_content == {"echo": "back"}


async def test_an_upstream_that_cannot_start_gives_a_clear_error_without_hanging(tmp_path: Path) -> None:
    upstreams = write_upstreams(
        tmp_path,
        """
upstreams:
  beh:
    command: "{python}"
    args: ["{behaviour}"]
  ghost:
    command: /nonexistent/binary-that-does-not-exist
""",
    )
    async with gateway_client(upstreams) as (gateway, client):
        assert gateway.upstreams["ghost"].status is not Status.READY
        assert "cannot start" in (gateway.upstreams["ghost"].last_error or "")
        names = {t.name for t in (await client.list_tools()).tools}
        assert "beh__echo" in names and not any(n.startswith("ghost__") for n in names)
        reason = gateway.upstreams["ghost"].down_reason()
        assert "reconnecting in" in reason or "connecting" in reason


async def test_an_upstream_list_change_is_refreshed_and_forwarded_to_the_client(tmp_path: Path) -> None:
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with gateway_client(behaviour_upstream(tmp_path), message_handler=on_message) as (_, client):
        before = {t.name for t in (await client.list_tools()).tools}
        await client.call_tool("beh__add_tool", {})
        with anyio.fail_after(10):
            await changed.wait()
        after = {t.name for t in (await client.list_tools()).tools}
    assert after - before == {"beh__added_0"}


async def test_cancelling_a_call_cancels_it_upstream(tmp_path: Path) -> None:
    marker = tmp_path / "cancelled-c1"
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        with anyio.move_on_after(1.0):
            await client.call_tool("beh__hang", {"tag": "c1"})
        # The upstream records the cancellation it received; ask it something to let it settle.
        with anyio.fail_after(10):
            while not marker.exists():
                await client.call_tool("beh__echo", {"text": "ping"})
    assert marker.read_text() == "1"


async def test_a_hanging_upstream_times_out_with_a_clear_error_and_is_cancelled(tmp_path: Path) -> None:
    upstreams = behaviour_upstream(tmp_path, call_timeout_s="0.5")
    async with gateway_client(upstreams) as (_, client):
        with anyio.fail_after(10):
            result = await client.call_tool("beh__hang", {"tag": "t1"})
        assert isinstance(result, types.CallToolResult) and result.is_error
        text = result.content[0].text  # type: ignore[union-attr]
        assert "did not answer within 0.5s" in text and "'beh'" in text
        with anyio.fail_after(10):
            while not (tmp_path / "cancelled-t1").exists():
                await client.call_tool("beh__echo", {"text": "ping"})


async def test_a_2026_client_listening_for_changes_hears_an_upstream_tool_list_change(tmp_path: Path) -> None:
    from mcp import Client
    from mcp.client.subscriptions import ToolsListChanged

    from mcp_guard.gateway import Gateway
    from mcp_guard.principal import LOCAL_PRINCIPAL
    from mcp_guard.server import build_server
    from tests.harness import FAST_BACKOFF, with_private_state

    gateway = Gateway(behaviour_upstream(tmp_path), with_private_state(None), backoff=FAST_BACKOFF)
    server = build_server(gateway, lambda ctx: LOCAL_PRINCIPAL)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        async with Client(server, mode="2026-07-28") as client:
            async with client.listen(tools_list_changed=True) as subscription:
                await client.call_tool("beh__add_tool", {})
                with anyio.fail_after(10):
                    event = await subscription.__anext__()
                assert isinstance(event, ToolsListChanged)
            names = {t.name for t in (await client.list_tools()).tools}
            assert "beh__added_0" in names
        tg.cancel_scope.cancel()


async def test_an_upstream_exiting_while_its_child_holds_stdout_fails_the_call_fast_and_comes_back(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child.pid"
    upstreams = behaviour_upstream(tmp_path, call_timeout_s="60")
    try:
        async with gateway_client(upstreams) as (gateway, client):
            upstream = gateway.upstreams["beh"]
            with anyio.fail_after(10):  # far below call_timeout_s: the exit itself ends the call
                crashed = await client.call_tool("beh__crash", {"pid_file": str(pid_file)})
            assert isinstance(crashed, types.CallToolResult) and crashed.is_error
            text = crashed.content[0].text  # type: ignore[union-attr]
            assert "upstream 'beh'" in text and "exited with status 3 during the call" in text
            with anyio.fail_after(20):  # the supervisor reconnects
                while upstream.connections < 2 or upstream.status is not Status.READY:
                    await upstream.changed.wait()
            again = await client.call_tool("beh__echo", {"text": "back"})
            assert isinstance(again, types.CallToolResult) and again.structured_content == {"echo": "back"}
            child = int(pid_file.read_text())
            assert not alive(child)  # stopped with the old connection's process group
    finally:  # should this fail, leave nothing running for 600 s
        if pid_file.exists():
            with suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
