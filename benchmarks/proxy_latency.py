"""Latency mcp-guard adds to a tool call, over stdio and streamable HTTP, against direct baselines.

    .venv/bin/python benchmarks/proxy_latency.py [--calls 2000] [--warmup 200] [--block 100]
                                                 [--concurrency 8] [--concurrent-calls 800]

One run measures the same upstream tool (the demo ``bank`` server's ``get_balance``)
over five paths, each a real client session to real processes on 127.0.0.1:

- ``direct stdio``: client -> ``python -m mcp_guard.demo bank`` (stdio subprocess);
- ``guard stdio>stdio``: client -> ``mcp-guard serve --transport stdio`` -> bank (stdio);
- ``direct http``: client -> bank served with ``--transport streamable-http``;
- ``guard http>stdio``: client -> ``mcp-guard serve --transport http`` -> bank (stdio);
- ``guard http>http``: client -> ``mcp-guard serve --transport http`` -> the same HTTP bank.

Calls are sequential (one in flight) and timed with ``perf_counter_ns`` around the
client's request. All sessions stay open for the whole run and the measured calls are
interleaved in blocks (``--block``), rotating the order, so a load spike from other
work on the machine hits every path alike rather than one of them. "added" is the
difference to the direct path over the same client-facing transport. ``gw CPU`` is the
gateway process's user+system CPU time per measured call (from /proc, 10 ms ticks).
A concurrency-N throughput table follows (N calls in flight on one session).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Literal, TextIO

import anyio
import httpx2
import yaml
from _common import (  # benchmarks/ is on sys.path when run as a script
    PYTHON,
    cpu_ns,
    demo_command,
    descendants,
    free_port,
    gateway_command,
    leftovers,
    load_line,
    parent,
    service,
    wait_gateway_ready,
    wait_tcp,
)
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp_guard.config.settings import GatewaySettings

TOOL = "get_balance"
ARGUMENTS = {"account": "ACC-1001"}
EXPECTED_BALANCE = 25_000.0
TARGET_ADDED_P50_US = {"stdio": 1_000.0, "http": 2_000.0}

Transport = Literal["stdio", "http"]


@dataclass
class Path_:
    """One measured path: a live client session plus its samples."""

    label: str
    transport: Transport
    session: ClientSession
    tool: str
    baseline: str | None = None
    """Label of the direct path over the same client-facing transport (None for a baseline)."""
    gateway_pid: int | None = None
    samples_ns: list[int] = field(default_factory=list)
    gateway_cpu_ns: int | None = None

    async def call(self) -> types.CallToolResult:
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(name=self.tool, arguments=ARGUMENTS)
        )
        return await self.session.send_request(request, types.CallToolResult)


@dataclass(frozen=True)
class Stats:
    p50: float
    p90: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_ns: list[int]) -> Stats:
        us = [s / 1_000 for s in samples_ns]
        cuts = statistics.quantiles(us, n=100, method="inclusive")
        return cls(p50=cuts[49], p90=cuts[89], p99=cuts[98], mean=statistics.fmean(us))


# -- sessions -------------------------------------------------------------------------------


async def open_stdio(stack: AsyncExitStack, command: list[str], errlog: TextIO, cwd: Path) -> ClientSession:
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(cwd))
    read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


async def open_http(stack: AsyncExitStack, url: str) -> ClientSession:
    client = await stack.enter_async_context(httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)))
    read, write = await stack.enter_async_context(streamable_http_client(url, http_client=client))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


def new_gateway_child(before: set[int]) -> int:
    """The pid of the gateway process the stdio client just started (a new direct child)."""
    for pid in descendants(os.getpid()):
        if pid not in before and parent(pid) == os.getpid():
            return pid
    raise RuntimeError("could not find the stdio gateway process")


LOCAL_SETTINGS = "local_principal: {user: bench, agent: proxy-latency}\n"
"""The gateway refuses to start without an identity; everything else stays at its defaults."""


def gateway_folder(workdir: Path, name: str, upstream: str, settings: str) -> tuple[Path, Path, Path]:
    """A working folder for one gateway (its relative ``var/`` audit log lands there).

    Returns the folder, its upstreams file and its settings file.
    """
    folder = workdir / name
    folder.mkdir()
    upstreams = folder / "upstreams.yaml"
    upstreams.write_text(f"upstreams:\n  bank:\n{upstream}", encoding="utf-8")
    config = folder / "mcp-guard.yaml"
    config.write_text(settings, encoding="utf-8")
    return folder, upstreams, config


@contextlib.asynccontextmanager
async def open_paths(
    workdir: Path, errlog: TextIO, settings: str, gateway: list[str]
) -> AsyncIterator[list[Path_]]:
    """Start every server and open one client session per path; everything stops on exit.

    ``gateway`` is the command that stands for ``mcp-guard``.
    """
    bank_port, gw_stdio_port, gw_http_port = free_port(), free_port(), free_port()
    bank_url = f"http://127.0.0.1:{bank_port}/mcp"
    stdio_upstream = f'    command: "{PYTHON}"\n    args: ["-m", "mcp_guard.demo", "bank"]\n'
    http_upstream = f"    type: streamable-http\n    url: {bank_url}\n"

    def serve(folder: tuple[Path, Path, Path], transport: str, *extra: str) -> list[str]:
        _, upstreams, config = folder
        return [
            *gateway,
            *("serve", "--upstreams", str(upstreams), "--config", str(config), "--transport", transport),
            *extra,
        ]

    gw_stdio = gateway_folder(workdir, "guard-stdio", stdio_upstream, settings)
    gw_http_stdio = gateway_folder(workdir, "guard-http-stdio", stdio_upstream, settings)
    gw_http_http = gateway_folder(workdir, "guard-http-http", http_upstream, settings)
    bank_command = demo_command("bank", "--transport", "streamable-http", "--port", str(bank_port))

    async with service("bank (HTTP)", bank_command, cwd=workdir) as bank, AsyncExitStack() as stack:
        await wait_tcp(bank, bank_port)
        via_stdio = await stack.enter_async_context(
            service(
                "guard http>stdio",
                serve(gw_http_stdio, "http", "--port", str(gw_stdio_port)),
                cwd=gw_http_stdio[0],
            )
        )
        via_http = await stack.enter_async_context(
            service(
                "guard http>http",
                serve(gw_http_http, "http", "--port", str(gw_http_port)),
                cwd=gw_http_http[0],
            )
        )
        await wait_gateway_ready(via_stdio, f"http://127.0.0.1:{gw_stdio_port}")
        await wait_gateway_ready(via_http, f"http://127.0.0.1:{gw_http_port}")

        direct_stdio = await open_stdio(stack, demo_command("bank"), errlog, workdir)
        before = set(descendants(os.getpid()))
        guard_stdio = await open_stdio(stack, serve(gw_stdio, "stdio"), errlog, gw_stdio[0])
        guard_tool = f"bank__{TOOL}"
        yield [
            Path_("direct stdio", "stdio", direct_stdio, TOOL),
            Path_(
                "guard stdio>stdio",
                "stdio",
                guard_stdio,
                guard_tool,
                "direct stdio",
                new_gateway_child(before),
            ),
            Path_("direct http", "http", await open_http(stack, bank_url), TOOL),
            Path_(
                "guard http>stdio",
                "http",
                await open_http(stack, f"http://127.0.0.1:{gw_stdio_port}/mcp"),
                guard_tool,
                "direct http",
                via_stdio.pid,
            ),
            Path_(
                "guard http>http",
                "http",
                await open_http(stack, f"http://127.0.0.1:{gw_http_port}/mcp"),
                guard_tool,
                "direct http",
                via_http.pid,
            ),
        ]


# -- measuring ------------------------------------------------------------------------------


async def check(path: Path_) -> None:
    result = await path.call()
    balance = (result.structured_content or {}).get("balance")
    if result.is_error or balance != EXPECTED_BALANCE:
        raise RuntimeError(f"{path.label}: unexpected result {result.model_dump(mode='json')}")


async def warm_up(paths: list[Path_], calls: int) -> None:
    for path in paths:
        await check(path)
        for _ in range(calls):
            await path.call()


async def measure(paths: list[Path_], calls: int, block: int) -> None:
    """``calls`` sequential calls per path, interleaved in blocks with a rotating order."""
    cpu_before = {p.label: cpu_ns(p.gateway_pid) for p in paths if p.gateway_pid}
    done = 0
    round_no = 0
    while done < calls:
        size = min(block, calls - done)
        shift = round_no % len(paths)
        for path in paths[shift:] + paths[:shift]:
            samples = path.samples_ns
            for _ in range(size):
                start = time.perf_counter_ns()
                await path.call()
                samples.append(time.perf_counter_ns() - start)
        done += size
        round_no += 1
    for path in paths:
        if path.gateway_pid:
            path.gateway_cpu_ns = (cpu_ns(path.gateway_pid) - cpu_before[path.label]) // calls


async def throughput(path: Path_, calls: int, concurrency: int) -> tuple[float, Stats]:
    """Calls per second and latency with ``concurrency`` calls in flight on one session."""
    remaining = calls
    samples: list[int] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter_ns()
            await path.call()
            samples.append(time.perf_counter_ns() - start)

    start = time.perf_counter_ns()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    elapsed_s = (time.perf_counter_ns() - start) / 1e9
    return calls / elapsed_s, Stats.of(samples)


# -- reporting ------------------------------------------------------------------------------


def latency_table(paths: list[Path_]) -> tuple[str, dict[str, tuple[float, float]]]:
    """The table, plus (added p50, added p99) per gateway path."""
    stats = {p.label: Stats.of(p.samples_ns) for p in paths}
    header = (
        f"{'path':<19} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'mean µs':>8} "
        f"{'added p50':>10} {'added p99':>10} {'gw CPU/call':>12}  baseline"
    )
    lines = [header, "-" * len(header)]
    added: dict[str, tuple[float, float]] = {}
    for path in paths:
        s = stats[path.label]
        add50 = add99 = cpu = base = ""
        if path.baseline:
            b = stats[path.baseline]
            added[path.label] = (s.p50 - b.p50, s.p99 - b.p99)
            add50, add99 = f"{s.p50 - b.p50:+.0f}", f"{s.p99 - b.p99:+.0f}"
            base = path.baseline
        if path.gateway_cpu_ns is not None:
            cpu = f"{path.gateway_cpu_ns / 1000:.0f} µs"
        lines.append(
            f"{path.label:<19} {s.p50:>8.0f} {s.p90:>8.0f} {s.p99:>8.0f} {s.mean:>8.0f} "
            f"{add50:>10} {add99:>10} {cpu:>12}  {base}"
        )
    return "\n".join(lines), added


def verdict(paths: list[Path_], added: dict[str, tuple[float, float]]) -> list[str]:
    lines = []
    for path in paths:
        if path.label not in added:
            continue
        target = TARGET_ADDED_P50_US[path.transport]
        add50 = added[path.label][0]
        outcome = (
            "PASS" if add50 <= target else f"MISS by {add50 - target:.0f} µs ({add50 / target:.1f}x target)"
        )
        lines.append(
            f"  {path.label:<19} added p50 {add50:>7.0f} µs vs {path.baseline:<12} "
            f"(target <= {target:.0f} µs): {outcome}"
        )
    return lines


def audit_durability(settings: str) -> str:
    """The ``audit.synchronous`` mode the gateways run with, and what it costs each call."""
    audit = (yaml.safe_load(settings) or {}).get("audit") or {}
    mode = audit.get("synchronous", GatewaySettings().audit.synchronous)
    costs = {
        "FULL": "the disk's fsync before every call is forwarded",
        "OVERLAPPED": "the disk's fsync beside the upstream's work",
        "NORMAL": "no fsync (survives a process crash, not a power loss)",
    }
    source = "" if "synchronous" in audit else " (the default; --config to change)"
    return f"synchronous {mode}{source}: {costs.get(str(mode), 'see docs/audit.md')}"


async def run(args: argparse.Namespace, settings: str) -> None:
    print(f"proxy_latency: {args.calls} sequential calls per path after {args.warmup} warm-up calls")
    print(
        f"tool: demo bank {TOOL}{ARGUMENTS}; blocks of {args.block}, interleaved; "
        f"Python {platform.python_version()}, mcp {version('mcp')}"
    )
    print(f"gateway audit durability: {audit_durability(settings)}")
    print(f"before: {load_line()}")
    with (
        tempfile.TemporaryDirectory(prefix="mcp-guard-bench-") as tmp,
        tempfile.TemporaryFile("w+") as errlog,
    ):
        workdir = Path(tmp)
        async with open_paths(workdir, errlog, settings, args.gateway_command) as paths:
            await warm_up(paths, args.warmup)
            await measure(paths, args.calls, args.block)
            print(f"after:  {load_line()}\n")
            table, added = latency_table(paths)
            print(table)
            print("\nverdict (median added latency vs the direct path over the same client transport):")
            print("\n".join(verdict(paths, added)))
            if args.concurrency > 0 and args.concurrent_calls > 0:  # 0 calls: no throughput table
                n, calls = args.concurrency, args.concurrent_calls
                print(f"\nthroughput, {n} calls in flight, {calls} calls per path:")
                print(f"{'path':<19} {'calls/s':>8} {'p50 µs':>8} {'p99 µs':>8}")
                for path in paths:
                    rate, s = await throughput(path, args.concurrent_calls, args.concurrency)
                    print(f"{path.label:<19} {rate:>8.0f} {s.p50:>8.0f} {s.p99:>8.0f}")
    left = leftovers()
    print(f"\nprocesses left running: {', '.join(left) if left else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2_000, help="measured calls per path (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up calls per path (default 200)")
    parser.add_argument("--block", type=int, default=100, help="calls per path per interleaved block")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight for the throughput table")
    parser.add_argument(
        "--config",
        default=None,
        help="settings file (mcp-guard.yaml) for every gateway; default: only a loopback local_principal",
    )
    parser.add_argument(
        "--gateway-command",
        type=shlex.split,
        default=gateway_command(),
        help="command that stands for mcp-guard (another build, a profiling wrapper); default: this venv's",
    )
    parser.add_argument("--concurrent-calls", type=int, default=800, help="calls per path for throughput")
    args = parser.parse_args()
    if args.calls < 2 or args.block < 1:
        parser.error("--calls must be >= 2 and --block >= 1")
    settings = Path(args.config).read_text(encoding="utf-8") if args.config else LOCAL_SETTINGS
    anyio.run(run, args, settings)


if __name__ == "__main__":
    main()
