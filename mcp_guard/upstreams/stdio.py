"""The stdio transport to an upstream process, with a bound on every message it sends.

The SDK's stdio client buffers a line until its newline arrives, however long it is:
a hostile or broken upstream could make the gateway hold gigabytes. This transport
reads bytes, splits lines itself and refuses any message longer than
``max_message_bytes`` *while reading* — the connection is then closed (pending calls
fail at once; the supervisor reconnects) and the reason recorded for the error message.
The connection also ends when the process exits, even if a process it started keeps
stdout open. A line that cannot be parsed fails the call it answers, when it can tell which
(``RawCalls.unparseable``); lone surrogate escapes are read as U+FFFD (:func:`_parse`).

The process runs in its own session; on exit stdin is closed, then the whole process
group gets SIGTERM and, after a grace period, SIGKILL, so no upstream outlives the gateway.
The group is also given to the gateway's :class:`~mcp_guard.upstreams.reaper.Reaper`,
which stops it should the gateway die without getting to do that.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, BinaryIO

import anyio
import pydantic_core
from anyio.abc import Process
from mcp import types
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from mcp_guard.line_buffer import LineBuffer
from mcp_guard.pipe_reading import CHUNK_BYTES, pipe_chunks
from mcp_guard.upstreams.config import StdioUpstream
from mcp_guard.upstreams.raw_calls import Link, RawCalls
from mcp_guard.upstreams.reaper import Reaper

logger = logging.getLogger(__name__)

GRACE_S = 2.0
"""How long a process may take to exit after its stdin closed, before SIGTERM / SIGKILL."""
EXIT_DRAIN_S = 0.5
"""How long stdout is still read after the process exited, for what it wrote before."""
_LONE_SURROGATE = re.compile(
    rb"\\\\"  # an escaped backslash, skipped (what follows it is no escape)
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a surrogate pair, kept
    rb"|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})"  # a lone surrogate
)


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
    process, stdout = await _start(config)
    if reaper is not None:
        await reaper.watch(process.pid)
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    assert process.stdin is not None
    calls = link.calls = RawCalls(name, process.stdin.send)

    stdout_ended = anyio.Event()
    reading, watching = anyio.CancelScope(), anyio.CancelScope()

    async def reader(chunks: asyncio.StreamReader) -> None:
        try:
            async with read_writer:
                with reading:
                    async for line in _lines(chunks, config.max_message_bytes, link):
                        message = _message(name, line, calls)
                        if message is not None:
                            await read_writer.send(SessionMessage(message))
        finally:
            stdout_ended.set()
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

    async with pipe_chunks(stdout) as chunks, anyio.create_task_group() as tg:
        tg.start_soon(reader, chunks)
        tg.start_soon(writer)
        tg.start_soon(_end_when_the_process_exits, process, link, stdout_ended, reading, watching)
        try:
            yield read_stream, write_stream
        finally:
            watching.cancel()  # from here on the process is stopped on purpose
            with anyio.CancelScope(shield=True):
                await _stop(process)
                if reaper is not None:
                    await reaper.forget(process.pid)
            tg.cancel_scope.cancel()


async def _start(config: StdioUpstream) -> tuple[Process, BinaryIO]:
    """The upstream process and the read end of its stdout: a pipe of the gateway's own,
    read on the event loop's pipe transport (:func:`~mcp_guard.pipe_reading.pipe_chunks`),
    not through the process's streams.

    Raises:
        OSError: the command cannot be started.
    """
    stdout_fd, child_stdout = os.pipe()
    stdout = os.fdopen(stdout_fd, "rb", buffering=0)
    try:
        process = await anyio.open_process(
            [config.command, *config.args],
            stdin=subprocess.PIPE,
            stdout=child_stdout,
            stderr=sys.stderr,
            cwd=config.cwd,
            env=get_default_environment() | config.env,
            start_new_session=True,  # its own process group: pgid == pid
        )
    except BaseException:
        stdout.close()
        raise
    finally:
        os.close(child_stdout)
    return process, stdout


async def _end_when_the_process_exits(
    process: Process,
    link: Link,
    stdout_ended: anyio.Event,
    reading: anyio.CancelScope,
    watching: anyio.CancelScope,
) -> None:
    """The process's exit ends the connection (``reading``) even while its stdout stays open
    (a process it started holds it), once what it wrote before exiting has been read. The
    leftover processes are stopped with the process group when the connection is torn down."""
    with watching:
        returncode = await process.wait()
        with anyio.move_on_after(EXIT_DRAIN_S):
            await stdout_ended.wait()
        if not stdout_ended.is_set():
            link.close_reason = _exit_reason(returncode)
            logger.warning(
                "upstream %s: %s, but its stdout is still open (a process it started holds it); "
                "ending the connection",
                link.upstream,
                link.close_reason,
            )
            reading.cancel()


def _message(name: str, line: bytes, calls: RawCalls) -> types.JSONRPCMessage | None:
    """The message on ``line`` for the SDK session; None when ``calls`` took it or it is dropped
    (not JSON: it fails the call it answers, if it can tell which; not JSON-RPC)."""
    try:
        parsed = _parse(line)
    except ValueError as exc:
        logger.warning("upstream %s: a message that cannot be parsed as JSON: %s", name, exc)
        calls.unparseable(line, str(exc))
        return None
    if calls.route(parsed):
        return None
    try:
        return types.jsonrpc_message_adapter.validate_python(parsed, by_name=False)
    except ValidationError as exc:
        logger.warning(
            "upstream %s: dropped a message that is not JSON-RPC: %s", name, exc.errors()[0]["msg"]
        )
        return None


def _parse(line: bytes) -> Any:
    """``line`` as JSON. A lone surrogate escape (``"\\ud800"``: valid JSON, what Python's
    ``json.dumps`` writes for a file name that is not UTF-8) cannot become UTF-8 text, which
    the parser refuses; it is read as U+FFFD, the Unicode replacement character, instead.

    Raises:
        ValueError: not JSON (invalid UTF-8 included), or nested too deeply.
    """
    try:
        return pydantic_core.from_json(line)
    except ValueError:
        replaced = _LONE_SURROGATE.sub(_replace_lone_surrogate, line) if b"\\u" in line else line
        if replaced == line:
            raise
        return pydantic_core.from_json(replaced)


def _replace_lone_surrogate(match: re.Match[bytes]) -> bytes:
    return b"\\ufffd" if match.group(1) else match.group()


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"the upstream process was killed by signal {-returncode}"
    return f"the upstream process exited with status {returncode}"


async def _lines(stdout: asyncio.StreamReader, limit: int, link: Link) -> AsyncIterator[bytes]:
    """Newline-delimited messages from stdout; ends at EOF or at the first over-long message."""
    lines = LineBuffer()
    try:
        while chunk := await stdout.read(CHUNK_BYTES):
            for line in lines.feed(chunk):
                if len(line) > limit:  # it arrived whole, within one read
                    _reset_as_too_large(link, limit)
                    return
                if line.strip():
                    yield line
            if len(lines) > limit:
                _reset_as_too_large(link, limit)
                return
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        return


def _reset_as_too_large(link: Link, limit: int) -> None:
    link.close_reason = (
        f"upstream '{link.upstream}' sent a message larger than {limit} bytes "
        "(max_message_bytes); the connection was reset"
    )
    logger.error("%s", link.close_reason)


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
