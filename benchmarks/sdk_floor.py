"""What one extra MCP hop costs with the Python SDK alone, next to mcp-guard, in one run.

    .venv/bin/python benchmarks/sdk_floor.py [--calls 600] [--warmup 100] [--block 50]

Stdio paths to the demo bank's ``get_balance``, measured one call at a time, all
sessions open at once and the calls interleaved in blocks (``--block``) with a
rotating order, so that load from elsewhere hits every path alike:

- ``direct``: client -> bank;
- ``raw line relay``: client -> a do-nothing Python relay (asyncio, no SDK: each
  line from the client is written to the bank, each line from the bank to the client)
  -> bank. Its added latency is the floor of any extra Python process on the path:
  two more pipe hops and process wake-ups, no work;
- ``bare SDK proxy``: client -> a 20-line proxy built on the same SDK (a low-level
  ``Server`` forwarding ``tools/call`` through a ``ClientSession``; no checks, no audit)
  -> bank. Its added latency is the floor any SDK-based gateway pays for the extra hop;
- ``mcp-guard (audit X)``: the full pipeline with ``audit: {synchronous: X}``, for
  ``FULL`` (the default), ``OVERLAPPED`` and ``NORMAL``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server

PY = sys.executable
BANK = StdioServerParameters(command=PY, args=["-m", "mcp_guard.demo", "bank"])


async def bare_proxy() -> None:
    """Serve stdio, forwarding every call to the bank: the SDK and nothing else."""
    async with stdio_client(BANK) as (read, write), ClientSession(read, write) as upstream:
        await upstream.initialize()
        tools = (await upstream.list_tools()).tools

        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(
                tools=[t.model_copy(update={"name": f"bank__{t.name}"}) for t in tools]
            )

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            name = params.name.split("__", 1)[1]
            request = types.CallToolRequest(
                params=types.CallToolRequestParams(name=name, arguments=params.arguments)
            )
            return await upstream.send_request(request, types.CallToolResult)

        server = Server("bare-proxy", on_list_tools=list_tools, on_call_tool=call_tool)
        async with stdio_server() as (read_in, write_out):
            await server.run(read_in, write_out, server.create_initialization_options())


async def raw_relay() -> None:
    """Serve stdio by copying lines to and from the bank: a Python hop doing nothing else."""
    loop = asyncio.get_running_loop()
    bank = await asyncio.create_subprocess_exec(
        PY, "-m", "mcp_guard.demo", "bank", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert bank.stdin is not None and bank.stdout is not None
    stdin = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin.buffer)
    out_transport, out_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout.buffer
    )
    stdout = asyncio.StreamWriter(out_transport, out_protocol, None, loop)

    async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while line := await source.readline():
            sink.write(line)
            await sink.drain()

    await asyncio.gather(copy(stdin, bank.stdin), copy(bank.stdout, stdout))


class Path_:
    """One client session and its samples (µs)."""

    def __init__(self, label: str, client: ClientSession, tool: str) -> None:
        self.label, self.client, self.tool = label, client, tool
        self.samples: list[float] = []

    async def call(self, record: bool) -> None:
        started = time.perf_counter_ns()
        result = await self.client.call_tool(self.tool, {"account": "ACC-1001"})
        if result.is_error:
            raise SystemExit(f"{self.label}: the call failed: {result.content}")
        if record:
            self.samples.append((time.perf_counter_ns() - started) / 1000)


async def open_path(stack: AsyncExitStack, label: str, params: StdioServerParameters, tool: str) -> Path_:
    read, write = await stack.enter_async_context(stdio_client(params))
    client = await stack.enter_async_context(ClientSession(read, write))
    await client.initialize()
    return Path_(label, client, tool)


def pct(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(q * len(samples)))]


async def run(calls: int, warmup: int, block_size: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="mcp-guard-sdk-floor-"))
    (folder / "upstreams.yaml").write_text(
        f'upstreams:\n  bank:\n    command: "{PY}"\n    args: ["-m", "mcp_guard.demo", "bank"]\n',
        encoding="utf-8",
    )
    for sync in ("FULL", "OVERLAPPED", "NORMAL"):
        (folder / sync).mkdir()
        (folder / sync / "mcp-guard.yaml").write_text(
            f"local_principal: {{user: bench}}\naudit: {{synchronous: {sync}}}\n", encoding="utf-8"
        )

    def guard(sync: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=PY,
            cwd=str(folder / sync),
            args=[
                "-m",
                "mcp_guard",
                "--log-level",
                "WARNING",
                "serve",
                "--upstreams",
                "../upstreams.yaml",
                "--config",
                "mcp-guard.yaml",
            ],
        )

    specs = [
        ("direct", BANK, "get_balance"),
        (
            "raw line relay",
            StdioServerParameters(command=PY, args=[__file__, "--serve-relay"]),
            "get_balance",
        ),
        (
            "bare SDK proxy",
            StdioServerParameters(command=PY, args=[__file__, "--serve-bare"]),
            "bank__get_balance",
        ),
        *(
            (f"mcp-guard (audit {s})", guard(s), "bank__get_balance")
            for s in ("FULL", "OVERLAPPED", "NORMAL")
        ),
    ]
    async with AsyncExitStack() as stack:
        paths = [await open_path(stack, *spec) for spec in specs]
        for path in paths:
            for _ in range(warmup):
                await path.call(record=False)
        for block, start in enumerate(range(0, calls, block_size)):
            k = block % len(paths)
            for path in paths[k:] + paths[:k]:
                for _ in range(min(block_size, calls - start)):
                    await path.call(record=True)
    print(
        f"sdk_floor: {calls} stdio calls per path after {warmup} warm-up calls, "
        f"interleaved in blocks of {block_size}"
    )
    print(f"{'path':28s} {'p50 µs':>8s} {'p99 µs':>8s} {'added p50':>10s} {'added p99':>10s}")
    base = sorted(paths[0].samples)
    for path in paths:
        samples = sorted(path.samples)
        added = (
            ""
            if path is paths[0]
            else f"{pct(samples, 0.5) - pct(base, 0.5):+10.0f} {pct(samples, 0.99) - pct(base, 0.99):+10.0f}"
        )
        print(f"{path.label:28s} {pct(samples, 0.5):8.0f} {pct(samples, 0.99):8.0f} {added}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--block", type=int, default=50, help="calls per path before switching")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-relay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        anyio.run(bare_proxy)
    elif args.serve_relay:
        asyncio.run(raw_relay())
    else:
        anyio.run(run, args.calls, args.warmup, args.block)


if __name__ == "__main__":
    main()
