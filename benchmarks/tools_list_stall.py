"""How long ``tools/list`` holds the gateway's event loop, which every other client shares.

    .venv/bin/python benchmarks/tools_list_stall.py [--tools 1000,10000] [--rounds 10] [--reloads 3]

In-process, one :class:`~mcp_guard.gateway.Gateway` per catalogue size, its tools served
by real stdio upstream subprocesses (this script run as ``--upstream N``, at most 2,500
tools each) and a policy folder whose HIDE rules give four principals four different
views (admin tools need the ``admin`` role; tools whose names end in 5, team ``ops``).
Each principal is a client of the gateway's MCP server (the SDK's own server loop) over
in-memory streams. A client sends raw JSON-RPC and encodes each answer to JSON, as the
transport does on the gateway's loop in service, but parses nothing (a real client does
that in its own process). A listing is every page, cursor after cursor.

A ticker on the same loop sleeps 1 ms at a time and records how late it wakes: the
longest lateness is the longest any other client's request waited for the loop. The
longest garbage collection of each phase is shown beside it: a full collection pauses
the whole process for a time that grows with everything it holds (not only listings).

Rows, for each size:

- ``idle``: the ticker alone (the loop's own jitter: the baseline);
- ``first listing``: each principal lists once, the first listings since the gateway
  started (what also follows an upstream's changed tools);
- ``policy reload``: the reload itself (``--reloads`` times): the catalogue rebuilt, the
  clients whose view changed told so (no listing: the longest stall only);
- ``after a reload``: right after each reload (catalogue and policy replaced), each
  principal lists once;
- ``again``: each principal lists, ``--rounds`` times over, nothing changed in between.

Each gateway keeps its state in a temporary folder; starting one pins every tool once
(about 15 s at 10,000 tools), which is not measured.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.memory import MessageStream, create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from mcp_guard.config.settings import GatewaySettings, ServerSettings
from mcp_guard.gateway import Gateway
from mcp_guard.principal import Principal
from mcp_guard.server import build_server
from mcp_guard.upstreams.config import UpstreamsFile

UPSTREAM_MAX = 2500
SCRIPT = str(Path(__file__).resolve())
POLICY = """\
rules:
  - id: admin-tools-for-admins
    priority: 1
    match: {tools: ["*__admin_*"]}
    when: {principal.roles: {not_contains: admin}}
    decision: HIDE
  - id: fives-for-ops
    priority: 1
    match: {tools: ["*5"]}
    when: {principal.teams: {not_contains: ops}}
    decision: HIDE
"""


# -- the upstream ------------------------------------------------------------------------


def tool_definitions(count: int) -> list[dict[str, Any]]:
    """``count`` plausible tools; one in ten is an ``admin_`` tool."""
    return [
        {
            "name": f"admin_tool_{i}" if i % 10 == 0 else f"tool_{i}",
            "description": f"Looks up records of kind {i % 37} in store {i} and returns them, newest "
            "first, at most as many as asked for.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "what to look for"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "kind": {"type": "string", "enum": ["a", "b", "c"]},
                },
                "required": ["query"],
            },
            "annotations": {"readOnlyHint": i % 3 == 0},
        }
        for i in range(count)
    ]


def serve_upstream(count: int) -> None:
    """Serve ``count`` tools over stdio, 500 to a page."""
    tools = tool_definitions(count)

    async def list_tools(ctx: Any, params: Any) -> dict[str, Any]:
        start = int(params.cursor) if params and params.cursor else 0
        page: dict[str, Any] = {"tools": tools[start : start + 500]}
        if start + 500 < count:
            page["nextCursor"] = str(start + 500)
        return page

    # A plain dict page: the SDK validates it into a ListToolsResult (cheaper to build here).
    server: Server[Any] = Server("many-tools", on_list_tools=list_tools)  # type: ignore[arg-type]

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


# -- the measurement ---------------------------------------------------------------------


@dataclass
class Ticker:
    """Sleeps ``tick_s`` at a time on the loop and remembers how late it woke, and how
    long each garbage collection took (a pause of the whole process)."""

    tick_s: float = 0.001
    lateness: list[float] = field(default_factory=list)
    collections: list[float] = field(default_factory=list)
    collecting_since: float = 0.0
    ticked: anyio.Event = field(default_factory=anyio.Event)

    async def run(self) -> None:
        gc.callbacks.append(self.on_collection)
        try:
            while True:
                started = time.perf_counter()
                await anyio.sleep(self.tick_s)
                self.lateness.append(time.perf_counter() - started - self.tick_s)
                self.ticked.set()
                self.ticked = anyio.Event()
        finally:
            gc.callbacks.remove(self.on_collection)

    async def caught_up(self) -> None:
        """Wait for the next tick: a stall just before now is recorded once it has run."""
        await self.ticked.wait()

    def on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.collecting_since = time.perf_counter()
        else:
            self.collections.append(time.perf_counter() - self.collecting_since)

    async def restart(self) -> None:
        await self.caught_up()
        self.lateness.clear()
        self.collections.clear()

    async def into(self, phase: Phase) -> None:
        """Fold the worst seen since :meth:`restart` into ``phase``."""
        await self.caught_up()
        phase.stall = max([phase.stall, *self.lateness])
        phase.collection = max([phase.collection, *self.collections])


@dataclass
class Phase:
    name: str
    listings: list[float] = field(default_factory=list)  # seconds per whole listing
    pages: list[float] = field(default_factory=list)  # seconds per page
    stall: float = 0.0
    collection: float = 0.0


class RawClient:
    """One principal's connection: raw JSON-RPC in, answers encoded to JSON and dropped."""

    def __init__(self, streams: MessageStream) -> None:
        self.read, self.write = streams
        self.next_id = 0

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.write.send(
            SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=self.next_id, method=method, params=params))
        )
        answer = await self.read.receive()
        if not isinstance(answer, SessionMessage):
            raise SystemExit(f"{method} failed: {answer!r}")
        message = answer.message
        message.model_dump_json(by_alias=True, exclude_unset=True)  # what the transport sends
        if not isinstance(message, JSONRPCResponse):
            raise SystemExit(f"{method} failed: {message}")
        return dict(message.result)

    async def initialize(self) -> None:
        info = {"name": "bench", "version": "1"}
        await self.request(
            "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": info}
        )
        await self.write.send(
            SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized"))
        )

    async def list_all(self, phase: Phase) -> int:
        """Every page of ``tools/list``; returns how many tools."""
        started = time.perf_counter()
        cursor: str | None = None
        count = 0
        while True:
            page_started = time.perf_counter()
            result = await self.request("tools/list", {"cursor": cursor} if cursor else {})
            phase.pages.append(time.perf_counter() - page_started)
            count += len(result["tools"])
            cursor = result.get("nextCursor")
            if not cursor:
                break
        phase.listings.append(time.perf_counter() - started)
        return count


def _always(principal: Principal) -> Callable[[Any], Principal]:
    """A principal resolver that names ``principal`` for every request."""
    return lambda ctx: principal


async def open_clients(
    tg: TaskGroup, stack: AsyncExitStack, gateway: Gateway, principals: list[Principal]
) -> list[RawClient]:
    clients = []
    for principal in principals:
        server = build_server(gateway, _always(principal))
        client_streams, server_streams = await stack.enter_async_context(
            create_client_server_memory_streams()
        )
        tg.start_soon(
            server.run, server_streams[0], server_streams[1], server.create_initialization_options()
        )
        client = RawClient(client_streams)
        await client.initialize()
        clients.append(client)
    return clients


async def measure(size: int, args: argparse.Namespace, folder: Path) -> tuple[list[Phase], list[int]]:
    counts = [min(UPSTREAM_MAX, size - start) for start in range(0, size, UPSTREAM_MAX)]
    upstreams = UpstreamsFile.model_validate(
        {
            "upstreams": {
                f"t{i}": {"command": sys.executable, "args": [SCRIPT, "--upstream", str(n)]}
                for i, n in enumerate(counts)
            }
        }
    )
    (folder / "policies").mkdir()
    (folder / "policies" / "visibility.yaml").write_text(POLICY)
    settings = GatewaySettings(state_dir=folder, server=ServerSettings(list_page_size=args.page_size))
    gateway = Gateway(upstreams, settings, policy_dir=folder / "policies")
    principals = [
        Principal(user=f"user{i}", agent="bench", roles=frozenset(roles), teams=frozenset(teams))
        for i, (roles, teams) in enumerate([({"admin"}, {"ops"}), ((), {"ops"}), ({"admin"}, ()), ((), ())])
    ]
    ticker = Ticker()
    phases: list[Phase] = []
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        with anyio.fail_after(300):
            # every upstream listed and its tools pinned (the gateway has no event for it)
            while len(gateway.catalog.tools) < size:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        clients = await open_clients(tg, stack, gateway, principals)
        tg.start_soon(ticker.run)

        idle = Phase("idle")
        await ticker.restart()
        await anyio.sleep(args.idle)
        await ticker.into(idle)
        phases.append(idle)

        first = Phase("first listing")
        await ticker.restart()
        visible = [await client.list_all(first) for client in clients]
        await ticker.into(first)
        phases.append(first)

        reload, reloaded = Phase("policy reload"), Phase("after a reload")
        for _ in range(args.reloads):
            await ticker.restart()
            await gateway.reload_policies("benchmark")
            await ticker.into(reload)
            await ticker.restart()
            for client in clients:
                await client.list_all(reloaded)
            await ticker.into(reloaded)
        phases += [reload, reloaded]

        again = Phase("again")
        await ticker.restart()
        for _ in range(args.rounds):
            for client in clients:
                await client.list_all(again)
        await ticker.into(again)
        phases.append(again)
        tg.cancel_scope.cancel()
    return phases, visible


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def report(results: dict[int, tuple[list[Phase], list[int]]], page_size: int) -> None:
    print(
        "| tools | phase | listings | listing p50 ms | listing p99 ms | page p99 ms "
        "| longest stall ms | longest GC ms |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, (phases, _) in results.items():
        for phase in phases:
            worst = f"{phase.stall * 1000:.1f} | {phase.collection * 1000:.1f}"
            if not phase.listings:
                print(f"| {size:,} | {phase.name} | | | | | {worst} |")
                continue
            ms = [s * 1000 for s in phase.listings]
            pages = [s * 1000 for s in phase.pages]
            print(
                f"| {size:,} | {phase.name} | {len(ms)} | {quantile(ms, 0.5):.1f} | {quantile(ms, 0.99):.1f}"
                f" | {quantile(pages, 0.99):.1f} | {worst} |"
            )
    print()
    for size, (_, visible) in results.items():
        seen = ", ".join(f"{n:,}" for n in visible)
        print(f"{size:,} tools: the four principals see {seen}; {page_size} a page")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average at the end: {' '.join(load)}")


async def run(args: argparse.Namespace) -> None:
    results = {}
    for size in args.tools:
        with tempfile.TemporaryDirectory(prefix="tools-list-stall-") as tmp:
            results[size] = await measure(size, args, Path(tmp))
    report(results, args.page_size)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=lambda s: [int(n) for n in s.split(",")], default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=10, help="listings by each principal, nothing changed")
    parser.add_argument(
        "--reloads", type=int, default=3, help="policy reloads, each followed by a listing each"
    )
    parser.add_argument("--idle", type=float, default=1.0, help="seconds of the ticker alone")
    parser.add_argument("--page-size", type=int, default=1000, help="the gateway's list_page_size")
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream is not None:
        serve_upstream(args.upstream)
        return
    anyio.run(run, args)


if __name__ == "__main__":
    main()
