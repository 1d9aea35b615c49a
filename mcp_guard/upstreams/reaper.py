"""No upstream process outlives the gateway, even a gateway killed with SIGKILL.

On a normal stop the gateway closes each upstream's stdin and then terminates its
process group (``upstreams/stdio.py``). A gateway that is killed outright runs none of
that: its upstreams only see their stdin end, and one that ignores it (or a child it
started) would live on. The :class:`Reaper` is a small process of its own, started with
the gateway, that knows every upstream process group and stops them all once the
gateway's end of its stdin closes without a clean goodbye
(``upstreams/_reaper_process.py``).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
from anyio.abc import Process

logger = logging.getLogger(__name__)

HELPER = Path(__file__).with_name("_reaper_process.py")
STOP_TIMEOUT_S = 5.0


class Reaper:
    """Tells the reaper process which upstream process groups to stop should the gateway die."""

    def __init__(self, process: Process | None) -> None:
        self._process = process
        self._lock = anyio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls) -> AsyncIterator[Reaper]:
        """Start the reaper process; on exit tell it the gateway stopped cleanly and wait for it.

        Without it (it cannot be started) upstreams are still stopped on every normal exit;
        the error is logged.
        """
        try:
            process = await anyio.open_process(
                [sys.executable, "-I", "-S", str(HELPER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=sys.stderr,
                start_new_session=True,
            )
        except OSError as exc:
            logger.error(
                "cannot start the reaper process (%s): upstreams would outlive a killed gateway", exc
            )
            process = None
        reaper = cls(process)
        try:
            yield reaper
        finally:
            with anyio.CancelScope(shield=True):
                await reaper._close()

    async def watch(self, pgid: int) -> None:
        """Stop process group ``pgid`` if the gateway dies before :meth:`forget`."""
        await self._send(f"+{pgid}")

    async def forget(self, pgid: int) -> None:
        """Process group ``pgid`` has been stopped."""
        await self._send(f"-{pgid}")

    async def _send(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None:
            return
        try:
            async with self._lock:
                await process.stdin.send(f"{line}\n".encode())
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.error("the reaper process is gone: upstreams would outlive a killed gateway")
            self._process = None

    async def _close(self) -> None:
        process = self._process
        if process is None:
            return
        await self._send("done")
        self._process = None
        with anyio.move_on_after(STOP_TIMEOUT_S):
            await process.aclose()  # closes its stdin; it exits at once after "done"
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()


__all__ = ["Reaper"]
