"""Reading a pipe on the event loop's own pipe transport.

Waiting for readiness per chunk (``anyio.wait_readable``) registers the descriptor with
the loop's selector and unregisters it again every time (two ``epoll_ctl``, a future and a
handle); an upstream's stdout read through the process's streams reaches its reader one
loop turn after it arrived (the subprocess transport hands each chunk on with
``call_soon``). The pipe transport keeps the descriptor registered while it is read and
hands each chunk straight to its reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO

CHUNK_BYTES = 64 * 1024
"""How much a reader takes at a time; the loop stops reading once twice this waits unread."""


@asynccontextmanager
async def pipe_chunks(pipe: BinaryIO) -> AsyncIterator[asyncio.StreamReader]:
    """The bytes arriving on ``pipe`` (a pipe, socket or terminal), read by the event loop
    until exit; ``pipe`` is closed then (or when the loop cannot read it), its descriptor
    left non-blocking."""
    chunks = asyncio.StreamReader(limit=CHUNK_BYTES)
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(chunks), pipe)
    except BaseException:
        pipe.close()
        raise
    try:
        yield chunks
    finally:
        transport.close()
