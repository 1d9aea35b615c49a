"""Latency of Inspector.scan on a 4 KB argument payload, throughput on a 1 MB result, and hostile text.

Usage: .venv/bin/python benchmarks/inspection_speed.py [--runs N] [--unfamiliar]

Arguments are scanned with every category; results without ``attack`` (argument-attack shapes are
only meaningful in tool arguments), as the gateway configures it. Timings are wall-clock, so run
on a quiet machine; ``cpu`` columns use thread CPU time and are less sensitive to other load.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import resource
import statistics
import string
import time
from datetime import UTC, datetime
from typing import Any

from mcp_guard.inspection import InspectionConfig, Inspector
from mcp_guard.principal import Principal
from mcp_guard.risk import BaselineStore, RiskConfig, RiskInput, RiskScorer
from mcp_guard.sessions import SessionStore

SENTENCES = [
    "The vendor confirmed delivery for Thursday morning.",
    "Latency on the EU cluster is back to normal.",
    "Please review the attached draft before the client call.",
    "Invoice 2231 was paid this morning.",
    "Can you double-check the totals in column F?",
    "We should archive the old wiki pages after the migration.",
    "The staging deploy finished without errors on build #4471.",
    "Ping me at dana.okoro@contoso.example if needed.",
]


def argument_payload(rng: random.Random, size: int = 4096) -> dict[str, Any]:
    body = ""
    while len(body) < size - 300:
        body += rng.choice(SENTENCES) + " "
    return {
        "to": "grace.haddad@contoso.example",
        "subject": "Weekly status",
        "body": body,
        "cc": ["ops+alerts@example.org"],
        "priority": 2,
        "labels": ["status", "weekly"],
    }


def result_payload(rng: random.Random, size: int = 1_000_000) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    total = 0
    while total < size:
        rec = {
            "id": f"ORD-{rng.randint(10000, 99999)}",
            "customer": f"user{rng.randint(1, 999)}@contoso.example",
            "status": rng.choice(["open", "shipped", "closed"]),
            "amount": rng.randint(1, 10000),
            "note": " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 6))),
        }
        records.append(rec)
        total += len(json.dumps(rec))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--unfamiliar", action="store_true", help="only large values of unfamiliar text")
    args = parser.parse_args()
    rng = random.Random(7)
    inspector = Inspector()
    results = Inspector(InspectionConfig(categories=frozenset({"pii", "secret", "injection", "evasion"})))
    if args.unfamiliar:
        unfamiliar(results, rng)
        return
    payload = argument_payload(rng)
    for _ in range(50):
        inspector.scan(payload)
    times = []
    cpu = []
    for _ in range(args.runs):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        inspector.scan(payload)
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    times.sort()
    p50 = statistics.median(times) * 1e6
    p99 = times[int(len(times) * 0.99) - 1] * 1e6
    size = len(json.dumps(payload))
    print(
        f"4 KB argument ({size} bytes): p50 {p50:.0f} us, p99 {p99:.0f} us over {args.runs} runs "
        f"(cpu mean {statistics.mean(cpu) * 1e6:.0f} us)"
    )
    # What the gateway's inspect + score stages do per call, measured together.
    config = RiskConfig()
    scorer = RiskScorer(config, BaselineStore(config.baseline))
    principal = Principal(user="bench", agent="agent")
    session = SessionStore().get("bench-session", principal)
    both = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        found = inspector.scan(payload, "$.arguments")
        scorer.score(
            RiskInput(
                principal,
                "mail__send_email",
                "mail",
                frozenset({"external", "write"}),
                "prod",
                payload,
                found,
                session,
                datetime.now(UTC),
            )
        )
        both.append(time.perf_counter() - t0)
    both.sort()
    print(
        f"4 KB argument, inspection + risk scoring: p50 {statistics.median(both) * 1e6:.0f} us, "
        f"p99 {both[int(len(both) * 0.99) - 1] * 1e6:.0f} us over {args.runs} runs"
    )
    big = result_payload(rng)
    size = len(json.dumps(big).encode())
    for name, scanner in (("result inspector", results), ("all categories", inspector)):
        best = best_cpu = float("inf")
        for _ in range(5):
            c0 = time.thread_time()
            t0 = time.perf_counter()
            scanner.scan(big)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.thread_time() - c0)
        print(
            f"1 MB result ({size} bytes, {len(big)} records, {name}): {best * 1e3:.0f} ms, "
            f"{size / best / 1e6:.1f} MB/s (cpu {best_cpu * 1e3:.0f} ms, {size / best_cpu / 1e6:.1f} MB/s)"
        )
    text = " ".join(rng.choice(SENTENCES) for _ in range(20000))[:1_000_000]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        results.scan(text)
        best = min(best, time.perf_counter() - t0)
    print(f"1 MB single text value: {best * 1e3:.0f} ms, {len(text) / best / 1e6:.1f} MB/s")

    hostile(inspector, results, rng)


def hostile(inspector: Inspector, results: Inspector, rng: random.Random) -> None:
    """Hostile text: long tokens without whitespace and high-entropy blobs, the shapes that
    once made inspection quadratic (window growth) or the combined RE2 set crawl."""
    for label, hostile in hostile_texts(rng):
        t0 = time.perf_counter()
        results.scan({"content": hostile})
        elapsed = time.perf_counter() - t0
        rate = len(hostile) / elapsed / 1e6
        print(f"hostile {label} ({len(hostile)} chars): {elapsed * 1e3:.0f} ms, {rate:.1f} MB/s")

    # A stream of small arguments the anchor automata have never seen (random printable
    # characters): each used to build DFA states in the combined automaton, ~50 ms a call.
    printable = string.ascii_letters + string.digits + " .,;:-_/@#$%&*()[]{}<>!?'\"=+"
    stream = []
    for _ in range(200):
        value = {"note": "".join(rng.choice(printable) for _ in range(4000))}
        t0 = time.perf_counter()
        inspector.scan(value, "$.arguments")
        stream.append(time.perf_counter() - t0)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"hostile stream of 200 random 4 kB arguments: first {stream[0] * 1e3:.1f} ms, "
        f"p50 {statistics.median(stream) * 1e3:.1f} ms, p99 {sorted(stream)[197] * 1e3:.1f} ms, "
        f"total {sum(stream):.2f} s; peak RSS {rss_mib:.0f} MiB"
    )


def unfamiliar(results: Inspector, rng: random.Random) -> None:
    """Large values made of many strings the combined automaton has never seen: it searches
    them a chunk of whole strings at a time and hands over to the groups once over its
    budget. Run in a process of their own (``--unfamiliar``): the other hostile rows leave
    the combined automaton resting, and these would then measure the groups alone."""
    printable = string.ascii_letters + string.digits + " .,;:-_/@#$%&*()[]{}<>!?'\"=+"

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))

    def printable_strings() -> list[str]:
        return ["".join(rng.choice(printable) for _ in range(4000)) for _ in range(250)]

    def word_strings() -> list[str]:
        return [" ".join(word() for _ in range(35)) for _ in range(5000)]

    shapes = {
        "random printable, 250 strings of 4 kB": printable_strings,
        "random words, 5000 strings of 200 B": word_strings,
    }
    for label, make in shapes.items():
        times = []
        for _ in range(3):
            value = make()
            t0 = time.perf_counter()
            results.scan({"content": value})
            times.append(time.perf_counter() - t0)
        shown = ", ".join(f"{t * 1e3:.0f}" for t in times)
        print(f"unfamiliar 1 MB, {label}, three new values: {shown} ms")


def hostile_texts(rng: random.Random) -> list[tuple[str, str]]:
    return [
        ("one 30 kB token", "v" * 30_000),
        ("one 900 kB token", "a" * 900_000),
        ("30 kB random base64", base64.b64encode(rng.randbytes(22_500)).decode()),
        ("1 MB random base64", base64.b64encode(rng.randbytes(750_000)).decode()),
        ("1 MB random hex", rng.randbytes(500_000).hex()),
    ]


if __name__ == "__main__":
    main()
