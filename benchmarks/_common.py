"""Shared helpers for the process-level benchmarks (proxy_latency.py, idle_sessions_rss.py).

Processes are started in their own session (process group), so stopping one reaches its
upstream children too; /proc is read for RSS, CPU time and descendants (Linux only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio
import httpx2
from anyio.abc import Process

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def gateway_command(*args: str) -> list[str]:
    """``mcp-guard ARGS`` from this virtualenv (the console script, else ``python -m mcp_guard``)."""
    script = Path(PYTHON).parent / "mcp-guard"
    base = [str(script)] if script.exists() else [PYTHON, "-m", "mcp_guard"]
    return [*base, *args]


def demo_command(name: str, *args: str) -> list[str]:
    return [PYTHON, "-m", "mcp_guard.demo", name, *args]


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (tiny race until the server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- /proc --------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS) of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_ns(pid: int) -> int:
    """User + system CPU time consumed by ``pid`` so far (resolution: one clock tick)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) * 1_000_000_000 // CLOCK_TICKS


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def parent(pid: int) -> int | None:
    """The parent pid of ``pid``, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (breadth first)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (ppid := parent(int(entry.name))) is not None:
            parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        children = parents.get(queue.pop(0), [])
        found.extend(children)
        queue.extend(children)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def describe(pid: int) -> str:
    """A short label for a process: the demo server name, ``mcp-guard``, else the program."""
    args = cmdline(pid)
    if "mcp_guard.demo" in args:
        return f"demo {args[args.index('mcp_guard.demo') + 1]}"
    if any(a.endswith("mcp-guard") or a == "mcp_guard" for a in args):
        return "mcp-guard"
    return Path(args[0]).name if args else "?"


# -- processes ----------------------------------------------------------------------------


@dataclass
class Service:
    """A background server process started by a benchmark."""

    name: str
    process: Process
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])


@contextlib.asynccontextmanager
async def service(
    name: str, command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> AsyncIterator[Service]:
    """Run ``command`` in its own process group; SIGTERM (then SIGKILL) it and its descendants on exit.

    ``env`` is added to this process's environment. Its stdout and stderr go to a
    temporary log, shown when start-up fails.
    """
    with tempfile.TemporaryFile() as log:
        process = await anyio.open_process(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
        svc = Service(name, process, log)
        try:
            yield svc
        finally:
            with anyio.CancelScope(shield=True):
                await stop(process)


async def stop(process: Process, timeout_s: float = 10.0) -> None:
    """Graceful stop: SIGTERM the leader, wait; then SIGKILL the group and any descendant left."""
    family = descendants(process.pid)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(timeout_s):
            await process.wait()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
    with anyio.move_on_after(5):
        while any(alive(pid) for pid in family):  # noqa: ASYNC110 (polling /proc: no event to wait on)
            await anyio.sleep(0.05)
    for pid in family:  # descendants that left the group (e.g. start_new_session upstreams)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


async def wait_tcp(svc: Service, port: int, timeout_s: float = 30.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    with anyio.fail_after(timeout_s):
        while True:
            if svc.process.returncode is not None:
                raise RuntimeError(f"{svc.name} exited early:\n{svc.log_tail()}")
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.05)
                continue
            await stream.aclose()
            return


async def wait_gateway_ready(svc: Service, base_url: str, timeout_s: float = 60.0) -> dict[str, object]:
    """Wait until the gateway's ``/healthz`` reports every upstream ready; returns the health body."""
    async with httpx2.AsyncClient(timeout=5) as client:
        with anyio.fail_after(timeout_s):
            while True:
                if svc.process.returncode is not None:
                    raise RuntimeError(f"{svc.name} exited early:\n{svc.log_tail()}")
                try:
                    response = await client.get(f"{base_url}/healthz")
                    body: dict[str, object] = response.json()
                    if body.get("status") == "ok":
                        return body
                except (httpx2.HTTPError, ValueError):
                    pass
                await anyio.sleep(0.1)


def leftovers() -> list[str]:
    """Descendants of this benchmark process still alive (should be none at the end)."""
    return [f"{pid} {describe(pid)}" for pid in descendants(os.getpid()) if alive(pid)]


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPU(s)"
