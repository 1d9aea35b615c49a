"""The stdio transport to an upstream process, with a bound on every message it sends.

The SDK's stdio client buffers a line until its newline arrives, however long it is:
a hostile or broken upstream could make the gateway hold gigabytes. This transport
reads bytes, splits lines itself and refuses any message longer than
``max_message_bytes`` *while reading* — the connection is then closed (pending calls
fail at once; the supervisor reconnects) and the reason recorded for the error message.

The process runs in its own session; on exit stdin is closed, then the whole process
group gets SIGTERM and, after a grace period, SIGKILL, so no upstream outlives the gateway.
The group is also given to the gateway's :class:`~mcp_guard.upstreams.reaper.Reaper`,
which stops it should the gateway die without getting to do that.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
import pydantic_core
from anyio.abc import Process
from mcp import types
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from mcp_guard.upstreams.config import StdioUpstream
from mcp_guard.upstreams.raw_calls import Link, RawCalls
from mcp_guard.upstreams.reaper import Reaper

logger = logging.getLogger(__name__)

GRACE_S = 2.0
"""How long a process may take to exit after its stdin closed, before SIGTERM / SIGKILL."""


@asynccontextmanager
async def bounded_stdio_client(
    name: str, config: StdioUpstream, link: Link, reaper: Reaper | None = None
) -> AsyncIterator[
    tuple[
        anyio.abc.ObjectReceiveStream[SessionMessage | Exception], anyio.abc.ObjectSendStream[SessionMessage]
    ]
]:
    """Start the upstream process and yield (read, write) message streams.

    Raises:
        OSError: the command cannot be started.
    """
    env = get_default_environment() | config.env
    process = await anyio.open_process(
        [config.command, *config.args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        cwd=config.cwd,
        env=env,
        start_new_session=True,  # its own process group: pgid == pid
    )
    if reaper is not None:
        await reaper.watch(process.pid)
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    assert process.stdin is not None
    calls = link.calls = RawCalls(name, process.stdin.send)

    async def reader() -> None:
        try:
            async with read_writer:
                async for line in _lines(process, config.max_message_bytes, link):
                    try:
                        parsed = pydantic_core.from_json(line)
                        if calls.route(parsed):
                            continue
                        message = types.jsonrpc_message_adapter.validate_python(parsed, by_name=False)
                    except ValueError as exc:  # not JSON, or not JSON-RPC (a ValidationError)
                        why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                        logger.warning("upstream %s: dropped a message that is not JSON-RPC: %s", name, why)
                        continue
                    await read_writer.send(SessionMessage(message))
        finally:
            calls.close(link.close_reason or "the upstream closed the connection")

    async def writer() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(data.encode())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await read_writer.aclose()  # the process stopped reading: end the session

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)
                if reaper is not None:
                    await reaper.forget(process.pid)
            tg.cancel_scope.cancel()


async def _lines(process: Process, limit: int, link: Link) -> AsyncIterator[bytes]:
    """Newline-delimited messages from stdout; ends at EOF or at the first over-long message."""
    assert process.stdout is not None
    buffer = bytearray()
    try:
        async for chunk in process.stdout:
            buffer += chunk
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if line.strip():
                    yield line
            if len(buffer) > limit:
                link.close_reason = (
                    f"upstream '{link.upstream}' sent a message larger than {limit} bytes "
                    "(max_message_bytes); the connection was reset"
                )
                logger.error("%s", link.close_reason)
                return
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        return


async def _stop(process: Process) -> None:
    """Close stdin, give the process a grace period, then terminate its whole process group."""
    if process.stdin is not None:
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.aclose()
    with anyio.move_on_after(GRACE_S):
        await process.wait()
    await terminate_posix_process_tree(process, GRACE_S)  # the leader and anything it started
    with (
        anyio.move_on_after(GRACE_S),
        suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError),
    ):
        await process.aclose()  # closes the pipes and reaps the process
    if process.returncode is None:
        logger.warning("upstream process %d did not exit", process.pid)
