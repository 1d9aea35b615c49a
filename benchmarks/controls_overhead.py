"""Per-call overhead of the operational controls.

Measures the full per-call control path — ``check`` (rate limit + budget),
``breaker_check``, ``concurrency`` enter/exit and ``record_outcome`` — against an empty
baseline of the same shape (the same awaits and ``async with`` on no-op objects),
in the same run, and prints p50/p99 per call and the difference.

    .venv/bin/python benchmarks/controls_overhead.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import anyio

from mcp_guard.controls import ControlCall, Controls, Instant, RawSpec, open_embedded_state, parse_limit_specs
from mcp_guard.controls.state import ControlState
from mcp_guard.principal import Principal

SPECS = [
    RawSpec(
        "bench.yaml", 1, "limits", {"id": "rl", "tools": ["bank__*"], "per": ["agent"], "rate": "1000000/s"}
    ),
    RawSpec(
        "bench.yaml",
        2,
        "budgets",
        {
            "id": "bud",
            "tools": ["bank__*"],
            "per": ["user"],
            "period": "day",
            "tz": "Europe/Berlin",
            "max_calls": 10**9,
            "max_cost": 10**12,
            "cost": {"arg": "amount"},
        },
    ),
    RawSpec("bench.yaml", 3, "breakers", {"id": "br", "upstreams": ["bank"], "consecutive_failures": 5}),
    RawSpec("bench.yaml", 4, "concurrency", {"id": "cc", "upstreams": ["bank"], "per": ["agent"], "max": 64}),
]


class _Null:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


async def _noop(*args: object) -> None:
    return None


def _pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] / 1000.0


async def _measure(step: Callable[[int], Awaitable[None]], n: int) -> list[int]:
    for i in range(min(n, 2000)):  # warm up caches and the plan
        await step(i)
    gc.collect()
    gc.disable()
    try:
        out = []
        clock = time.perf_counter_ns
        for i in range(n):
            t0 = clock()
            await step(i)
            out.append(clock() - t0)
        return out
    finally:
        gc.enable()


def _calls(count: int) -> list[ControlCall]:
    return [
        ControlCall(
            principal=Principal(user=f"user{i % 50}", agent=f"agent{i % 20}", teams=frozenset({"ops"})),
            tool="bank__pay",
            upstream="bank",
            arguments={"amount": 3},
        )
        for i in range(count)
    ]


async def _controls_step(c: Controls, calls: list[ControlCall]) -> Callable[[int], Awaitable[None]]:
    wall = datetime(2026, 6, 15, 12, tzinfo=UTC)

    async def step(i: int) -> None:
        call = calls[i % len(calls)]
        now = Instant(i * 1e-6, wall)
        admission = await c.admit(call, now)  # limits, budgets, breakers: the limits stage
        if admission.verdict is not None:
            raise AssertionError("benchmark call was refused")
        async with c.concurrency(call):
            pass
        await c.record_outcome(call, False, now.monotonic, admission=admission)

    return step


async def _baseline_step(calls: list[ControlCall]) -> Callable[[int], Awaitable[None]]:
    null = _Null()

    async def step(i: int) -> None:
        call = calls[i % len(calls)]
        await _noop(call)
        await _noop(call)
        async with null:
            pass
        await _noop(call)

    return step


def _row(name: str, samples: list[int], base: list[int] | None) -> str:
    p50, p99 = _pct(samples, 0.50), _pct(samples, 0.99)
    mean = statistics.fmean(samples) / 1000.0
    if base is None:
        return f"| {name:<40} | {p50:7.2f} | {p99:7.2f} | {mean:7.2f} |      — |      — |"
    b50, b99 = _pct(base, 0.50), _pct(base, 0.99)
    return f"| {name:<40} | {p50:7.2f} | {p99:7.2f} | {mean:7.2f} | {p50 - b50:6.2f} | {p99 - b99:6.2f} |"


async def main(n: int) -> None:
    cfg = parse_limit_specs(SPECS)
    calls = _calls(1000)
    base = await _measure(await _baseline_step(calls), n)
    memory = await _measure(await _controls_step(Controls(cfg), calls), n)
    fresh = await _measure(await _controls_step(Controls(cfg), _calls(n)), n)
    rows = [
        _row("empty baseline", base, None),
        _row("controls, MemoryState", memory, base),
        _row("controls, new Principal object per call", fresh, base),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        async with open_embedded_state(Path(tmp) / "wb.db", flush_interval=1.0) as state:
            behind = await _measure(await _controls_step(Controls(cfg, state), calls), n)
        rows.append(_row("controls, SQLite write-behind (1 s)", behind, base))
        async with open_embedded_state(Path(tmp) / "wt.db", flush_interval=0) as through:
            store: ControlState = through
            wt = await _measure(await _controls_step(Controls(cfg, store), calls), max(n // 10, 500))
        rows.append(_row("controls, SQLite write-through", wt, base))
    print(f"{n} calls per row (write-through: {max(n // 10, 500)}); microseconds per call")
    print("| path                                     |     p50 |     p99 |    mean | +p50 | +p99 |")
    print("|------------------------------------------|--------:|--------:|--------:|-------:|-------:|")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    anyio.run(main, parser.parse_args().calls)
