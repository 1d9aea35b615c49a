"""What one extra MCP hop costs with the Python SDK alone, next to mcp-guard, in one run.

    .venv/bin/python benchmarks/sdk_floor.py [--calls 600] [--warmup 100]

Four stdio paths to the demo bank's ``get_balance``, measured one call at a time:

- ``direct``: client -> bank;
- ``bare SDK proxy``: client -> a 20-line proxy built on the same SDK (a low-level
  ``Server`` forwarding ``tools/call`` through a ``ClientSession``; no checks, no audit)
  -> bank. Its added latency is the floor any SDK-based gateway pays for the extra hop;
- ``mcp-guard``: the full pipeline with the default audit durability (``FULL``);
- ``mcp-guard NORMAL``: the same with ``audit: {synchronous: NORMAL}``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
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


async def measure(params: StdioServerParameters, tool: str, calls: int, warmup: int) -> list[float]:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        for _ in range(warmup):
            await client.call_tool(tool, {"account": "ACC-1001"})
        samples = []
        for _ in range(calls):
            started = time.perf_counter_ns()
            await client.call_tool(tool, {"account": "ACC-1001"})
            samples.append((time.perf_counter_ns() - started) / 1000)
    return sorted(samples)


def pct(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(q * len(samples)))]


async def run(calls: int, warmup: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="mcp-guard-sdk-floor-"))
    (folder / "upstreams.yaml").write_text(
        f'upstreams:\n  bank:\n    command: "{PY}"\n    args: ["-m", "mcp_guard.demo", "bank"]\n',
        encoding="utf-8",
    )
    (folder / "full.yaml").write_text("local_principal: {user: bench}\n", encoding="utf-8")
    (folder / "normal.yaml").write_text(
        "local_principal: {user: bench}\naudit: {synchronous: NORMAL}\n", encoding="utf-8"
    )

    def guard(config: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=PY,
            cwd=str(folder),
            args=[
                "-m",
                "mcp_guard",
                "--log-level",
                "WARNING",
                "serve",
                "--upstreams",
                "upstreams.yaml",
                "--config",
                config,
            ],
        )

    paths = [
        ("direct", BANK, "get_balance"),
        (
            "bare SDK proxy",
            StdioServerParameters(command=PY, args=[__file__, "--serve-bare"]),
            "bank__get_balance",
        ),
        ("mcp-guard (audit FULL)", guard("full.yaml"), "bank__get_balance"),
        ("mcp-guard (audit NORMAL)", guard("normal.yaml"), "bank__get_balance"),
    ]
    print(f"sdk_floor: {calls} sequential stdio calls per path after {warmup} warm-up calls")
    print(f"{'path':26s} {'p50 µs':>8s} {'p99 µs':>8s} {'added p50':>10s} {'added p99':>10s}")
    base: list[float] | None = None
    for label, params, tool in paths:
        samples = await measure(params, tool, calls, warmup)
        base = base or samples
        added = (
            ""
            if samples is base
            else f"{pct(samples, 0.5) - pct(base, 0.5):+10.0f} {pct(samples, 0.99) - pct(base, 0.99):+10.0f}"
        )
        print(f"{label:26s} {pct(samples, 0.5):8.0f} {pct(samples, 0.99):8.0f} {added}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        anyio.run(bare_proxy)
    else:
        anyio.run(run, args.calls, args.warmup)


if __name__ == "__main__":
    main()
