"""The stdio transport to an upstream process: the descriptors it opens are all closed again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import types
from mcp.shared.message import SessionMessage

from mcp_guard.upstreams.config import StdioUpstream
from mcp_guard.upstreams.raw_calls import Link
from mcp_guard.upstreams.stdio import bounded_stdio_client

pytestmark = pytest.mark.anyio

SAY_HELLO_THEN_WAIT = (
    "import sys\n"
    'sys.stdout.write(\'{"jsonrpc": "2.0", "method": "notifications/message", '
    '"params": {"level": "info", "data": "hello"}}\\n\')\n'
    "sys.stdout.flush()\n"
    "sys.stdin.read()\n"
)


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_an_upstream_connection_reads_the_process_and_closes_every_descriptor_it_opened() -> None:
    before = open_descriptors()
    config = StdioUpstream(command=sys.executable, args=["-c", SAY_HELLO_THEN_WAIT])
    with anyio.fail_after(20):
        async with bounded_stdio_client("hello", config, Link("hello")) as (read, _):
            message = await read.receive()
    assert isinstance(message, SessionMessage)
    assert isinstance(message.message, types.JSONRPCNotification)
    assert message.message.params == {"level": "info", "data": "hello"}
    assert open_descriptors() == before


async def test_an_upstream_that_cannot_start_leaves_no_descriptor_open(tmp_path: Path) -> None:
    before = open_descriptors()
    config = StdioUpstream(command=str(tmp_path / "no-such-program"))
    with pytest.raises(OSError), anyio.fail_after(20):
        async with bounded_stdio_client("ghost", config, Link("ghost")):
            pass
    assert open_descriptors() == before
