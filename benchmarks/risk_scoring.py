"""Cost of the 7-factor risk score with a warm baseline and a realistic session.

Scores a rotating set of calls (about 4 KB of arguments each, with detector findings)
for a principal whose baseline has finished warm-up, in a session holding 200 recent
calls and a few tainted results, and prints p50/p99 per score. Then the gateway's score
stage for a tiny call (``{"account": "ACC-1001"}``) once its MCP, workflow and principal
sessions are full (256 calls each): argument shape, score, ``factor_scores`` and
``breakdown``. Then measures the write-behind cost: ``flush`` of 1 and of 100 changed
baselines to a SQLite file, and ``observe`` per call.

    .venv/bin/python benchmarks/risk_scoring.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from mcp_guard.decision import Decision
from mcp_guard.findings import Finding, Severity
from mcp_guard.principal import Principal
from mcp_guard.risk import (
    BaselineConfig,
    BaselineStore,
    EnvironmentConfig,
    RiskConfig,
    RiskInput,
    RiskScorer,
    open_baseline_store,
)
from mcp_guard.sessions import CallRecord, SessionConfig, SessionStore, argument_shape

PRINCIPAL = Principal(user="alice", agent="invoice-bot", roles=frozenset({"finance"}))
START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday
TOOLS: list[tuple[str, frozenset[str]]] = [
    ("crm__get_customer", frozenset({"read"})),
    ("crm__update_customer", frozenset({"write"})),
    ("mail__send_email", frozenset({"external"})),
    ("fs__delete_file", frozenset({"delete"})),
    ("db__query", frozenset({"read"})),
]


def payload(i: int) -> dict[str, Any]:
    lines = [
        f"Line {n}: invoice {i}-{n} for ACME Corp, amount {n * 17.5:.2f} EUR, status pending."
        for n in range(48)
    ]
    return {
        "to": ["billing@corp.example", "partner@vendor.example"],
        "subject": f"Invoice batch {i}",
        "body": "\n".join(lines),
        "options": {"priority": "normal", "track": True, "tags": ["finance", "q4"]},
        "callback": "https://hooks.corp.example/notify",
    }


FINDINGS = [
    Finding(type="EMAIL", category="pii", severity=Severity.LOW, path="$.to[0]"),
    Finding(type="US_SSN", category="pii", severity=Severity.HIGH, path="$.body", start=10, end=21),
    Finding(type="ZERO_WIDTH", category="evasion", severity=Severity.LOW, path="$.subject"),
]


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    samples = sorted(samples_ns)
    p50 = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99) - 1] / 1000
    return p50, p99


def build(calls: int) -> tuple[RiskScorer, list[RiskInput]]:
    config = RiskConfig(environment=EnvironmentConfig(internal_domains=frozenset({"corp.example"})))
    baselines = BaselineStore(config.baseline)
    for n in range(2000):  # warm baseline: two weeks of working hours
        tool, _ = TOOLS[n % len(TOOLS)]
        at = START - timedelta(days=14) + timedelta(minutes=7 * n)
        baselines.observe(PRINCIPAL, tool, at, arguments=payload(n))
    scorer = RiskScorer(config, baselines)
    sessions = SessionStore(SessionConfig(), clock=time.monotonic)
    session = sessions.get("bench-session", PRINCIPAL)
    for n in range(200):
        tool, actions = TOOLS[n % len(TOOLS)]
        at = START + timedelta(seconds=3 * n)
        session.record_call(
            CallRecord(
                tool, at, tool.split("__")[0], actions, Decision.ALLOW, shape=argument_shape(payload(n))
            )
        )
        if n % 50 == 0:
            session.record_result_findings("crm__get_customer", FINDINGS[:2], at)
    now = START + timedelta(seconds=600)
    inputs = []
    for i in range(min(calls, 64)):
        tool, actions = TOOLS[i % len(TOOLS)]
        args = payload(i)
        inputs.append(
            RiskInput(PRINCIPAL, tool, tool.split("__")[0], actions, "prod", args, FINDINGS, session, now)
        )
    return scorer, inputs


def timed(label: str, fn: Callable[[int], object], calls: int) -> None:
    """Print wall p50/p99 per call and mean CPU time per call (less sensitive to a busy machine)."""
    for i in range(min(calls, 1000)):  # warm caches
        fn(i)
    gc.collect()
    gc.disable()
    samples: list[int] = []
    clock = time.perf_counter_ns
    cpu0 = time.process_time_ns()
    for i in range(calls):
        t0 = clock()
        fn(i)
        samples.append(clock() - t0)
    cpu = (time.process_time_ns() - cpu0) / calls / 1000
    gc.enable()
    p50, p99 = percentiles(samples)
    print(f"{label:<58} p50 {p50:6.1f} us  p99 {p99:6.1f} us  cpu/call {cpu:5.1f} us")


def bench_scoring(calls: int) -> None:
    scorer, inputs = build(calls)
    size = len(json.dumps(inputs[0].arguments).encode())
    shaped = [i._replace(shape=argument_shape(i.arguments)) for i in inputs]
    n = len(inputs)
    print(f"warm baseline (2000 calls), 200-call session with taint, {size} B arguments, 3 findings")
    timed("score", lambda i: scorer.score(inputs[i % n]), calls)
    timed("score, argument shape precomputed by the caller", lambda i: scorer.score(shaped[i % n]), calls)
    timed("argument_shape alone", lambda i: argument_shape(inputs[i % n].arguments), calls)


def bench_tiny_call(calls: int) -> None:
    """What the score stage does for a tiny call, its three sessions full (see the docstring)."""
    config = RiskConfig()
    baselines = BaselineStore(config.baseline)
    scorer = RiskScorer(config, baselines)
    store = SessionStore(SessionConfig(), clock=time.monotonic)
    session, workflow, everywhere = store.for_call("bench", PRINCIPAL, {"mcp-guard/workflow": "wf"})
    assert workflow is not None
    tool, args = "bank__get_balance", {"account": "ACC-1001"}
    shape = argument_shape(args)
    now = START + timedelta(minutes=30)
    for n in range(1000):  # sessions full, baseline warm: four calls a second
        at = now - timedelta(seconds=n / 4)
        if n < SessionConfig().max_calls:
            record = CallRecord(tool, at, "bank", frozenset({"read"}), Decision.ALLOW, shape=shape)
            for s in (everywhere, workflow, session):
                s.record_call(record)
        baselines.observe(PRINCIPAL, tool, at, shape=shape)

    def stage(_: int) -> None:
        call_shape = argument_shape(args)
        assessment = scorer.score(
            RiskInput(
                principal=PRINCIPAL,
                tool=tool,
                upstream="bank",
                actions=frozenset({"read"}),
                environment="prod",
                arguments=args,
                findings=(),
                session=session,
                now=now,
                workflow=workflow,
                principal_session=everywhere,
                shape=call_shape,
            )
        )
        assessment.factor_scores()
        assessment.breakdown()

    print("tiny call, MCP + workflow + principal sessions of 256 calls each, warm baseline")
    timed("score stage: shape + score + factor_scores + breakdown", stage, calls)


async def bench_flush() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_baseline_store(
            Path(tmp) / "baselines.sqlite3", BaselineConfig(flush_interval_s=0)
        ) as store:
            await _flush_rounds(store)


async def _flush_rounds(store: BaselineStore) -> None:
    args = payload(0)
    principals = [Principal(user=f"user{n}", agent="bot") for n in range(100)]
    for n in range(500):
        for p in principals:
            store.observe(p, TOOLS[n % len(TOOLS)][0], START + timedelta(minutes=n), shape=str(n % 7))
    await store.flush()
    for label, who in (("1 changed baseline", principals[:1]), ("100 changed baselines", principals)):
        samples = []
        for r in range(30):
            for p in who:
                store.observe(p, "crm__get_customer", START + timedelta(hours=r), arguments=args)
            t0 = time.perf_counter_ns()
            await store.flush()
            samples.append(time.perf_counter_ns() - t0)
        p50, _ = percentiles(samples)
        print(f"flush, {label}: p50 {p50 / 1000:.2f} ms  max {max(samples) / 1e6:.2f} ms")
    samples = []
    for r in range(5000):
        t0 = time.perf_counter_ns()
        store.observe(principals[0], "crm__get_customer", START + timedelta(seconds=r), shape="abc")
        samples.append(time.perf_counter_ns() - t0)
    p50, p99 = percentiles(samples)
    print(f"observe (shape given): p50 {p50:.1f} us  p99 {p99:.1f} us")


def machine_reference() -> None:
    """How fast this machine runs plain Python right now (an idle modern core: about 8 us)."""
    samples = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        sum(range(1000))
        samples.append(time.perf_counter_ns() - t0)
    p50, _ = percentiles(samples)
    print(f"machine reference: sum(range(1000)) p50 {p50:.1f} us; load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    machine_reference()
    bench_scoring(args.calls)
    bench_tiny_call(args.calls)
    anyio.run(bench_flush)


if __name__ == "__main__":
    main()
