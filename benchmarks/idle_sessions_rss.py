"""Memory cost of idle client sessions on ``mcp-guard serve --transport http``.

    .venv/bin/python benchmarks/idle_sessions_rss.py [--sessions 100] [--settle 2]

Starts the gateway on the bundled ``upstreams.yaml`` (the four demo upstreams over
stdio) on 127.0.0.1, reads its RSS (``VmRSS`` in /proc/<pid>/status) once every
upstream is ready, then opens N streamable-HTTP client sessions one after the other
(``initialize`` + ``tools/list`` each) and keeps them open and idle. Reports the
gateway's RSS at checkpoints, the delta and the per-session cost (overall, and
marginal after the first 10 sessions, which also pay for lazily built state) and the
RSS of each upstream subprocess separately. The sessions are then closed, N new ones
opened and closed again: a flat second round means closed sessions' memory is reused
(the allocator keeps it), a rising one would mean sessions leak.
The gateway runs in a temporary folder (its audit log lands there) with a settings
file holding only a loopback ``local_principal``.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
from _common import (  # benchmarks/ is on sys.path when run as a script
    ROOT,
    Service,
    descendants,
    describe,
    free_port,
    gateway_command,
    leftovers,
    load_line,
    rss_kib,
    service,
    wait_gateway_ready,
)
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

SETTINGS = "local_principal: {user: bench, agent: idle-sessions}\n"


def mib(kib: float) -> str:
    return f"{kib / 1024:8.1f} MiB"


def upstream_rss(gateway: Service) -> dict[str, tuple[int, int]]:
    """``label -> (pid, RSS KiB)`` for every process the gateway started."""
    found: dict[str, tuple[int, int]] = {}
    for pid in descendants(gateway.pid):
        try:
            found[f"{describe(pid)} (pid {pid})"] = (pid, rss_kib(pid))
        except (OSError, RuntimeError):  # exited meanwhile
            continue
    return found


async def open_session(stack: AsyncExitStack, url: str) -> int:
    """One client session kept open on ``stack``; returns how many tools it lists."""
    client = await stack.enter_async_context(httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=None)))
    read, write = await stack.enter_async_context(streamable_http_client(url, http_client=client))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return len((await session.list_tools()).tools)


@dataclass
class Readings:
    rows: list[tuple[str, int]] = field(default_factory=list)
    """``(moment, gateway VmRSS KiB)`` in order; the first is the baseline."""
    upstreams_start: dict[str, tuple[int, int]] = field(default_factory=dict)
    upstreams_loaded: dict[str, tuple[int, int]] = field(default_factory=dict)
    ready_upstreams: int = 0
    tools: int = 0


async def measure(gateway: Service, url: str, sessions: int, settle_s: float) -> Readings:
    readings = Readings()

    async def reading(label: str) -> int:
        await anyio.sleep(settle_s)
        kib = rss_kib(gateway.pid)
        readings.rows.append((label, kib))
        return kib

    await reading("after start (upstreams ready)")
    readings.upstreams_start = upstream_rss(gateway)
    checkpoints = sorted({c for c in (1, 10, 50, sessions) if c <= sessions})
    async with AsyncExitStack() as stack:
        opened = 0
        for checkpoint in checkpoints:
            while opened < checkpoint:
                readings.tools = await open_session(stack, url)
                opened += 1
            await reading(f"{checkpoint} session(s) open, idle")
        readings.upstreams_loaded = upstream_rss(gateway)
    await reading("all sessions closed")
    async with AsyncExitStack() as stack:  # a second round shows whether freed memory is reused
        for _ in range(sessions):
            await open_session(stack, url)
        await reading(f"{sessions} opened again, idle")
    await reading("closed again")
    return readings


def report(readings: Readings, sessions: int) -> None:
    rows = readings.rows
    base = rows[0][1]
    loaded = dict(rows)[f"{sessions} session(s) open, idle"]
    print(f"upstreams: {readings.ready_upstreams} ready, {readings.tools} tools listed per session\n")
    print(f"{'gateway process':<34} {'VmRSS':>12} {'delta':>12}")
    for label, kib in rows:
        print(f"{label:<34} {mib(kib):>12} {mib(kib - base):>12}")
    print(f"\nper session, {sessions} sessions:{'':<13}{(loaded - base) / sessions:8.1f} KiB")
    rss_10 = dict(rows).get("10 session(s) open, idle")
    if rss_10 is not None and sessions > 10:
        print(f"per session, marginal 10 -> {sessions}:{'':<8}{(loaded - rss_10) / (sessions - 10):8.1f} KiB")
    print(f"\n{'upstream subprocess':<34} {'at start':>12} {f'{sessions} sessions':>12}")
    for label, (_, kib) in readings.upstreams_start.items():
        later = readings.upstreams_loaded.get(label, (0, 0))[1]
        print(f"{label:<34} {mib(kib):>12} {mib(later):>12}")
    total = sum(kib for _, kib in readings.upstreams_start.values())
    print(f"{'upstreams total':<34} {mib(total):>12}")
    print(f"{'gateway + upstreams at start':<34} {mib(total + base):>12}")


def prepare(workdir: Path) -> Path:
    """The settings file and the demo file store in the temporary working folder."""
    config = workdir / "mcp-guard.yaml"
    config.write_text(SETTINGS, encoding="utf-8")
    (workdir / "files").mkdir()
    return config


async def run(args: argparse.Namespace) -> None:
    upstreams = ROOT / "upstreams.yaml"
    with tempfile.TemporaryDirectory(prefix="mcp-guard-bench-") as tmp:
        workdir = Path(tmp)
        config = prepare(workdir)
        port = free_port()
        serve = ["serve", "--upstreams", str(upstreams), "--transport", "http", "--port", str(port)]
        print(f"idle_sessions_rss: {args.sessions} idle streamable-HTTP sessions on mcp-guard serve")
        print(f"gateway: mcp-guard {' '.join(serve)}")
        print(f"before: {load_line()}\n")
        env = {"DEMO_FILES_ROOT": str(workdir / "files")}
        command = gateway_command(*serve, "--config", str(config))
        async with service("mcp-guard", command, cwd=workdir, env=env) as gateway:
            health = await wait_gateway_ready(gateway, f"http://127.0.0.1:{port}")
            readings = await measure(gateway, f"http://127.0.0.1:{port}/mcp", args.sessions, args.settle)
            ready = health.get("upstreams")
            readings.ready_upstreams = len(ready) if isinstance(ready, dict) else 0
        report(readings, args.sessions)
    print(f"\nafter: {load_line()}")
    left = leftovers()
    print(f"processes left running: {', '.join(left) if left else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100, help="client sessions to open (default 100)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before each reading")
    args = parser.parse_args()
    if args.sessions < 1:
        parser.error("--sessions must be >= 1")
    anyio.run(run, args)


if __name__ == "__main__":
    main()
