"""The reaper process: stops the upstreams' process groups when the gateway dies without doing it.

Started by :class:`mcp_guard.upstreams.reaper.Reaper` as ``python -I -S <this file>`` in a
session of its own, so a terminal's Ctrl-C or a signal to the gateway's process group
does not reach it. It reads lines on stdin:

* ``+<pgid>``: an upstream's process group, started by the gateway;
* ``-<pgid>``: that group has been stopped by the gateway;
* ``done``: the gateway is shutting down cleanly (it stops its upstreams itself).

When stdin ends without ``done``, the gateway is gone (SIGKILL, a crash, the OOM killer):
every group still listed gets SIGTERM and, after a grace period, SIGKILL — the upstream
and whatever it started, even if it ignores the end of its stdin and SIGTERM.

Standard library only: it must start fast and import nothing of the gateway.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_S = 2.0


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        line = raw.strip()
        if line == b"done":
            return 0
        try:
            pgid = int(line[1:])
        except ValueError:
            continue
        if line.startswith(b"+"):
            groups.add(pgid)
        elif line.startswith(b"-"):
            groups.discard(pgid)
    if groups:
        print(
            f"mcp-guard: the gateway is gone; stopping {len(groups)} upstream process group(s)",
            file=sys.stderr,
            flush=True,
        )
        reap(groups)
    return 0


def reap(groups: set[int]) -> None:
    """SIGTERM every group, then SIGKILL those that are still there after :data:`GRACE_S`."""
    remaining = _signal(groups, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = _signal(remaining, 0)
    _signal(remaining, signal.SIGKILL)


def _signal(groups: set[int], signum: int) -> set[int]:
    """Send ``signum`` to each group; the groups that still exist."""
    existing: set[int] = set()
    for pgid in groups:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            continue
        existing.add(pgid)
    return existing


if __name__ == "__main__":
    sys.exit(main())
