"""The stdio wire to the client without worker threads: stdin lines in, protocol out.

The SDK reads stdin and writes stdout in worker threads. A cancellation cannot
interrupt a blocked read, so on SIGTERM the gateway would hang until the client wrote
another line; and every message out costs two thread hand-offs (write, flush). For
pipes, sockets and terminals (how every MCP host starts a stdio server) stdin is read
on the event loop's pipe transport (:mod:`mcp_guard.pipe_reading`) and stdout written
when the loop finds it writable instead: a signal stops the gateway at once, and a
response costs one non-blocking ``write``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import selectors
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio

from mcp_guard.line_buffer import LineBuffer
from mcp_guard.pipe_reading import CHUNK_BYTES, pipe_chunks

MAX_LINE_BYTES = 64 * 1024 * 1024
"""A JSON-RPC message longer than this is dropped (the client is broken or hostile) and
answered with an error (:class:`OverlongLine`, :mod:`mcp_guard.malformed`)."""


def pollable(fd: int) -> bool:
    """Whether ``fd`` can be waited on by the event loop: pipes, sockets and terminals, but
    not regular files, nor character devices the selector refuses (``/dev/null`` under epoll).

    Those are left to the SDK's threaded streams.
    """
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        return False
    with selectors.DefaultSelector() as selector:  # the kind the event loop waits with
        try:
            selector.register(fd, selectors.EVENT_READ)
        except OSError:
            return False
    return True


class OverlongLine(str):
    """Yielded in place of a line longer than ``max_line_bytes``, whose bytes were dropped:
    empty text (nothing reads it as a message), with the limit it passed."""

    limit: int

    def __new__(cls, limit: int) -> OverlongLine:
        line = super().__new__(cls, "")
        line.limit = limit
        return line


class StdinLines:
    """Async-iterable UTF-8 lines from a pollable file descriptor; an :class:`OverlongLine`
    for each line longer than ``max_line_bytes``."""

    def __init__(self, fd: int = 0, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.fd = fd
        self.max_line_bytes = max_line_bytes

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        lines = LineBuffer()
        discarding = False
        async with _reading(self.fd) as chunks:
            while chunk := await chunks.read(CHUNK_BYTES):
                for line in lines.feed(chunk):
                    if discarding:
                        discarding = False
                    elif len(line) > self.max_line_bytes:  # it arrived whole, within one read
                        yield OverlongLine(self.max_line_bytes)
                    else:
                        yield line.decode("utf-8", errors="replace")
                if len(lines) > self.max_line_bytes:
                    lines.take_rest()
                    if not discarding:
                        discarding = True
                        yield OverlongLine(self.max_line_bytes)
            rest = lines.take_rest()
            if rest and not discarding:
                yield rest.decode("utf-8", errors="replace")


@asynccontextmanager
async def _reading(fd: int) -> AsyncIterator[asyncio.StreamReader]:
    """The bytes arriving on ``fd`` (:func:`pipe_chunks`); ``fd`` stays open and its blocking
    mode is restored on exit."""
    was_blocking = os.get_blocking(fd)
    try:
        async with pipe_chunks(os.fdopen(fd, "rb", buffering=0, closefd=False)) as chunks:
            yield chunks
    finally:
        os.set_blocking(fd, was_blocking)


@contextmanager
def claimed_stdout() -> Iterator[int]:
    """Serve the wire from a private, non-blocking duplicate of fd 1 while fd 1 points
    at stderr.

    Stray output (a ``print``, a library writing to stdout) then lands in the log,
    never in the middle of a JSON-RPC frame. fd 1 and the blocking mode are restored
    on exit.
    """
    wire = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    was_blocking = os.get_blocking(wire)  # a terminal's flags are shared with the shell
    os.set_blocking(wire, False)
    os.dup2(2, 1)
    try:
        yield wire
    finally:
        os.set_blocking(wire, was_blocking)
        os.dup2(wire, 1)
        os.close(wire)


class StdoutClosed(anyio.BrokenResourceError):
    """The client closed its end of our stdout: the session is over."""


class StdoutPipe:
    """The ``write``/``flush`` pair the SDK's stdio transport writes messages with, plus
    :meth:`send` for writers beside it, on a pollable, non-blocking file descriptor
    (see :func:`claimed_stdout`) without blocking the event loop.

    Messages are queued whole and leave in order; one task at a time writes, and a
    ``flush`` that finds another task writing returns at once (that task writes the
    rest of the queue too).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pending = bytearray()
        self._flushing = False

    async def write(self, text: str) -> None:
        self._pending += text.encode("utf-8")

    async def send(self, data: bytes) -> None:
        """Queue one whole message and flush."""
        self._pending += data
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued; waits (without blocking the loop) while the pipe is full.

        Raises:
            StdoutClosed: the client closed its end.
        """
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._pending:
                try:
                    written = os.write(self.fd, self._pending)
                except BlockingIOError:
                    await anyio.wait_writable(self.fd)
                    continue
                except (BrokenPipeError, ConnectionResetError) as exc:
                    self._pending.clear()
                    raise StdoutClosed(f"the client closed stdout: {exc}") from None
                del self._pending[:written]
        finally:
            self._flushing = False
