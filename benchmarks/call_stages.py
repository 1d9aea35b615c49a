"""Where the gateway's time goes inside one tool call, stage by stage, per audit durability.

    .venv/bin/python benchmarks/call_stages.py [--calls 2000] [--block 100]

In-process: one :class:`~mcp_guard.gateway.Gateway` per ``audit.synchronous`` mode
(``FULL``, ``OVERLAPPED``, ``NORMAL``), each with the demo ``bank`` as a real stdio
upstream subprocess and its audit log on a real SQLite file in a temporary folder.
``Gateway.call_tool`` is called directly (no client transport), one call in flight,
the gateways interleaved in blocks (``--block``) with a rotating order so that load
from elsewhere on the machine hits every mode alike.

The decision chain's stages are timed by the chain itself (the ``stage_us`` of every
decision entry); the other parts are timed by wrapping the gateway's own methods on
the instance (the forward step, a function shared by the gateways, is wrapped once for
all of them), ``perf_counter_ns`` around each await:

- ``decision entry``: ``CallRecorder.decision`` (build, encode, commit the write-ahead entry);
- ``upstream round trip``: ``pipeline.forwarding.forward`` (controls, the raw request, the
  bank's own work, the answer), and within it ``upstream.call_tool`` alone;
- ``result stages``: ``ResultChain.run`` (bounds, result inspection);
- ``wait for fsync``: ``CallRecorder.durable`` (only ``OVERLAPPED`` waits here);
- ``call_tool``: all of it, as a transport sees it.

What no row shows is the rest of ``call_tool``: session lookup, remembering the call,
building the result. Between calls the benchmark sleeps ``--turnaround`` (untimed), as a
client takes time to read an answer and send the next call; the gateway's background
work (the outcome entry) happens there, as it would in service. The client transport
(stdin/stdout or HTTP) is not included: see ``proxy_latency.py`` for the end-to-end figures.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup
from mcp import types

import mcp_guard.gateway
from mcp_guard.config.settings import AuditSettings, GatewaySettings
from mcp_guard.controls import Controls
from mcp_guard.gateway import Gateway
from mcp_guard.pipeline import forwarding
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.principal import Principal
from mcp_guard.upstreams.config import UpstreamsFile
from mcp_guard.upstreams.supervisor import Upstream

Sync = Literal["FULL", "OVERLAPPED", "NORMAL"]
MODES: tuple[Sync, ...] = ("FULL", "OVERLAPPED", "NORMAL")
PRINCIPAL = Principal(user="bench", agent="call-stages")
ARGUMENTS = {"account": "ACC-1001"}
T = TypeVar("T")


class Timed:
    """One gateway and the per-call samples (ns) of each wrapped part."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.samples: dict[str, list[int]] = defaultdict(list)
        self.recording = False

    def wrap(self, label: str, method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter_ns()
            try:
                return await method(*args, **kwargs)
            finally:
                if self.recording:
                    self.samples[label].append(time.perf_counter_ns() - started)

        return timed

    def instrument(self) -> None:
        """Wrap the parts of a call on this gateway's instances (after it has started)."""
        gateway, recorder = self.gateway, self.gateway.recorder
        assert recorder is not None
        recorder.decision = self.wrap("decision entry", recorder.decision)  # type: ignore[method-assign,assignment]
        recorder.durable = self.wrap("wait for fsync", recorder.durable)  # type: ignore[method-assign,assignment]
        upstream = gateway.upstreams["bank"]
        upstream.call_tool = self.wrap("upstream.call_tool", upstream.call_tool)  # type: ignore[method-assign,assignment]
        chain = gateway.result_chain
        chain.run = self.wrap("result stages", chain.run)  # type: ignore[method-assign,assignment]

    async def call(self, turnaround_s: float) -> None:
        await anyio.sleep(turnaround_s)
        started = time.perf_counter_ns()
        result = await self.gateway.call_tool(PRINCIPAL, "bench-session", "bank__get_balance", ARGUMENTS)
        elapsed = time.perf_counter_ns() - started
        if result.is_error:
            raise SystemExit(f"the call failed: {result.content}")
        if self.recording:
            self.samples["call_tool"].append(elapsed)


def time_round_trips(gateways: Iterable[Timed]) -> None:
    """Time the forward step (one function for every gateway) of each call for the gateway
    of its upstream."""
    by_upstream = {id(timed.gateway.upstreams["bank"]): timed for timed in gateways}
    untimed = forwarding.forward

    async def forward(call: ToolCall, upstream: Upstream, controls: Controls) -> types.CallToolResult:
        timed = by_upstream[id(upstream)]
        started = time.perf_counter_ns()
        try:
            return await untimed(call, upstream, controls)
        finally:
            if timed.recording:
                timed.samples["upstream round trip"].append(time.perf_counter_ns() - started)

    mcp_guard.gateway.forward = forward  # type: ignore[attr-defined]  # the name the gateway calls


async def open_gateway(tg: TaskGroup, folder: Path, sync: Sync) -> Timed:
    upstreams = UpstreamsFile.model_validate(
        {"upstreams": {"bank": {"command": sys.executable, "args": ["-m", "mcp_guard.demo", "bank"]}}}
    )
    settings = GatewaySettings(
        state_dir=folder,
        audit=AuditSettings(
            path=folder / "audit.db", signing_key_path=folder / "audit.pem", synchronous=sync
        ),
    )
    gateway = Gateway(upstreams, settings)
    await tg.start(gateway.run)
    if gateway.lookup_tool("bank__get_balance") is None:
        raise SystemExit("the bank upstream did not come up")
    timed = Timed(gateway)
    timed.instrument()
    return timed


def stage_samples(folder: Path, first_seq: int) -> dict[str, list[float]]:
    """The chain's own stage timings (µs) from the decision entries after ``first_seq``."""
    with sqlite3.connect(folder / "audit.db") as db:
        rows = db.execute(
            "SELECT record FROM entries WHERE kind = 'decision' AND seq > ?", (first_seq,)
        ).fetchall()
    stages: dict[str, list[float]] = defaultdict(list)
    for (record,) in rows:
        for stage, us in json.loads(record)["stage_us"].items():
            stages[stage].append(us)
    return stages


def head_seq(folder: Path) -> int:
    with sqlite3.connect(folder / "audit.db") as db:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0])


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="call-stages-") as tmp:
        folders = {sync: Path(tmp) / sync for sync in MODES}
        async with anyio.create_task_group() as tg:
            gateways = {sync: await open_gateway(tg, folders[sync], sync) for sync in MODES}
            time_round_trips(gateways.values())
            for timed in gateways.values():  # warm-up: imports, caches, the upstream's first calls
                for _ in range(args.warmup):
                    await timed.call(args.turnaround)
            await anyio.sleep(0.2)  # let the warm-up's outcome entries commit
            firsts = {sync: head_seq(folders[sync]) for sync in MODES}
            order = list(MODES)
            for block in range(0, args.calls, args.block):
                for sync in order:
                    timed = gateways[sync]
                    timed.recording = True
                    for _ in range(min(args.block, args.calls - block)):
                        await timed.call(args.turnaround)
                    timed.recording = False
                order = order[1:] + order[:1]
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
        report(gateways, {sync: stage_samples(folders[sync], firsts[sync]) for sync in MODES})


def report(gateways: dict[Sync, Timed], stages: dict[Sync, dict[str, list[float]]]) -> None:
    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    print("| part | " + " | ".join(f"{s} p50 µs | {s} p90 µs" for s in MODES) + " |")
    print("| --- |" + " ---: | ---: |" * len(MODES))
    chain_stages = list(next(iter(stages.values())))
    rows: list[tuple[str, dict[Sync, list[float]]]] = [
        (f"chain: {stage}", {s: stages[s][stage] for s in MODES}) for stage in chain_stages
    ]
    parts = ("decision entry", "upstream round trip", "upstream.call_tool", "result stages", "wait for fsync")
    for label in (*parts, "call_tool"):
        rows.append((label, {s: [v / 1000 for v in gateways[s].samples[label]] for s in MODES}))
    for label, by_mode in rows:
        cells = " | ".join(f"{p(v, 50):,.0f} | {p(v, 90):,.0f}" for v in by_mode.values())
        print(f"| {label} | {cells} |")
    calls = len(gateways[MODES[0]].samples["call_tool"])
    print(f"\n{calls} calls per mode; chain stages as recorded in each decision entry's stage_us.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per mode")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured calls per mode first")
    parser.add_argument("--block", type=int, default=100, help="calls per mode before switching")
    parser.add_argument("--turnaround", type=float, default=0.0005, help="seconds between calls (untimed)")
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
