"""Reading the client's stdin without a worker thread, so shutdown never waits on a read.

The SDK reads stdin in a worker thread, which a cancellation cannot interrupt: on
SIGTERM the gateway would hang until the client wrote another line. For pipes and
terminals (how every MCP host starts a stdio server) this reader waits for
readability on the event loop instead, so a signal stops the gateway at once.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator

import anyio

MAX_LINE_BYTES = 64 * 1024 * 1024
"""A JSON-RPC message longer than this is dropped (the client is broken or hostile)."""


def pollable(fd: int) -> bool:
    """Whether ``fd`` can be waited on by the event loop (pipes, sockets, terminals; not files)."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


class StdinLines:
    """Async-iterable UTF-8 lines from a pollable file descriptor."""

    def __init__(self, fd: int = 0, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.fd = fd
        self.max_line_bytes = max_line_bytes

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        was_blocking = os.get_blocking(self.fd)
        os.set_blocking(self.fd, False)
        buffer = bytearray()
        discarding = False
        try:
            while True:
                await anyio.wait_readable(self.fd)
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if discarding:
                        discarding = False
                        continue
                    yield line.decode("utf-8", errors="replace")
                if len(buffer) > self.max_line_bytes:
                    buffer.clear()
                    discarding = True
            if buffer and not discarding:
                yield bytes(buffer).decode("utf-8", errors="replace")
        finally:
            os.set_blocking(self.fd, was_blocking)
