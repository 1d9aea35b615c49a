"""Audit log benchmark: latency added to one call, appends/s by concurrency, verify time for 1M entries.

    .venv/bin/python benchmarks/audit_throughput.py [--seconds 2] [--verify-entries 1000000]

Each append is a realistic ~500-byte decision record, committed durably (write-ahead)
before the call returns. Latency is measured per append, from the call to the
durable commit (with ``OVERLAPPED``: to the end of ``durable()``, the fsync the
gateway overlaps with the upstream's work).

The first table is what audit adds to one call (one decision entry in flight, as on
a gateway serving one client). The disk's own floor is measured in the same run,
interleaved with the appends in blocks so that the shared disk's mood hits every
row alike: one ``pwrite`` of the same size plus ``fdatasync`` on a preallocated file
in the same folder, which is the least any write that survives power loss costs here.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio

from mcp_guard.audit import AuditConfig, SqliteAuditLog, canonical_json, digest, verify
from mcp_guard.audit.chain import entry_hash, make_checkpoint
from mcp_guard.audit.models import GENESIS_HASH, format_time
from mcp_guard.audit.schema import DDL
from mcp_guard.signing import load_or_create_signing_key

Sync = Literal["FULL", "OVERLAPPED", "NORMAL"]
MODES: tuple[Sync, ...] = ("FULL", "OVERLAPPED", "NORMAL")


def record(i: int) -> dict[str, Any]:
    args = {"path": f"/srv/data/report-{i}.csv", "note": "customer [REDACTED:US_SSN]"}
    return {
        "principal": {"user": f"user{i % 50}@example.com", "agent": "claude-code"},
        "session": f"sess-{i % 200}",
        "tool": ("read_file", "send_email", "run_sql")[i % 3],
        "arguments": args,
        "args_digest": digest(args),
        "findings": [{"type": "US_SSN", "category": "pii", "severity": "high", "path": "$.args.note"}],
        "risk": 42.5,
        "rules": ["pii-redact", "default-allow"],
        "decision": "ALLOW",
        "reason": "allowed with redaction",
        "latency_ms": 0.31,
    }


async def run_load(directory: Path, sync: Sync, writers: int, seconds: float) -> tuple[float, float, float]:
    config = AuditConfig(
        path=directory / f"bench-{sync}-{writers}.db",
        signing_key_path=directory / "key.pem",
        synchronous=sync,
    )
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def writer(w: int) -> None:
        i = w
        while time.perf_counter() < deadline:
            rec = record(i)
            t = time.perf_counter()
            await log.durable(await log.append("decision", rec))
            latencies.append(time.perf_counter() - t)
            i += writers

    async with SqliteAuditLog.open(config) as log:
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for w in range(writers):
                tg.start_soon(writer, w)
        elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return len(latencies) / elapsed, q[49] * 1e3, q[98] * 1e3


async def run_rate(directory: Path, sync: Sync, rate: int, seconds: float) -> tuple[float, float, float]:
    """Open-loop load: ``rate`` calls/s arrive on schedule, whatever the log's speed."""
    config = AuditConfig(
        path=directory / f"rate-{sync}-{rate}.db", signing_key_path=directory / "key.pem", synchronous=sync
    )
    latencies: list[float] = []

    async def one(i: int) -> None:
        rec = record(i)
        t = time.perf_counter()
        await log.durable(await log.append("decision", rec))
        latencies.append(time.perf_counter() - t)

    async with SqliteAuditLog.open(config) as log:
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(int(rate * seconds)):
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await anyio.sleep(delay)
                tg.start_soon(one, i)
        elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return len(latencies) / elapsed, q[49] * 1e3, q[98] * 1e3


async def run_single(directory: Path, calls: int, block: int = 50) -> dict[str, list[float]]:
    """One append at a time on each kind of log, next to the raw fdatasync floor.

    ``OVERLAPPED`` is timed twice: until ``append`` returns (what a call waits for
    before it is forwarded) and until ``durable`` returns (the fsync, which the gateway
    overlaps with the upstream's work)."""
    samples: dict[str, list[float]] = {
        "disk floor (pwrite+fdatasync)": [],
        "FULL": [],
        "OVERLAPPED: written (before forward)": [],
        "OVERLAPPED: durable (before result)": [],
        "NORMAL": [],
    }
    floor_path = directory / "floor.bin"
    fd = os.open(floor_path, os.O_RDWR | os.O_CREAT, 0o600)
    os.posix_fallocate(fd, 0, 64 << 20)
    os.fsync(fd)
    payload = canonical_json(record(0)).encode()
    offset = 0

    def floor() -> None:
        nonlocal offset
        os.pwrite(fd, payload, offset)
        os.fdatasync(fd)
        offset = (offset + len(payload)) % (64 << 20)

    configs = {
        sync: AuditConfig(
            path=directory / f"single-{sync}.db", signing_key_path=directory / "key.pem", synchronous=sync
        )
        for sync in MODES
    }
    try:
        async with (
            SqliteAuditLog.open(configs["FULL"]) as full,
            SqliteAuditLog.open(configs["OVERLAPPED"]) as overlapped,
            SqliteAuditLog.open(configs["NORMAL"]) as normal,
        ):
            logs = {"FULL": full, "NORMAL": normal}
            for start in range(0, calls, block):
                for label, out in samples.items():
                    for i in range(start, min(start + block, calls)):
                        rec = record(i)
                        t = time.perf_counter()
                        if label in logs:
                            await logs[label].append("decision", rec)
                        elif label.startswith("OVERLAPPED"):
                            receipt = await overlapped.append("decision", rec)
                            if label.endswith("(before result)"):
                                await overlapped.durable(receipt)
                        else:
                            floor()
                        out.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    return samples


def build_big_log(path: Path, key_path: Path, n: int, every: int = 1000) -> float:
    """Write ``n`` chained entries directly with executemany; return seconds taken."""
    started = time.perf_counter()
    key = load_or_create_signing_key(key_path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.executescript(DDL)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    batch: list[tuple[int, str, str, str, str, str, str]] = []
    db.execute("BEGIN")
    for seq in range(1, n + 1):
        time_ = format_time(t0 + timedelta(milliseconds=seq))
        rec = canonical_json(record(seq))
        id_ = f"{seq:032x}"
        h = entry_hash(seq, id_, time_, "decision", rec, prev)
        batch.append((seq, id_, time_, "decision", rec, prev, h))
        prev = h
        if seq % every == 0 or seq == n:
            db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
            cp = make_checkpoint(key, seq, h, time_, 1)
            db.execute(
                "INSERT INTO checkpoints (seq, hash, time, first_seq, key_id, signature) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (cp.seq, cp.hash, cp.time, cp.first_seq, cp.key_id, cp.signature),
            )
    db.execute("COMMIT")
    db.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each load run")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--rates", type=int, nargs="+", default=[200, 1000, 2000, 5000])
    parser.add_argument("--single-calls", type=int, default=3000, help="appends per row of the first table")
    parser.add_argument("--verify-entries", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        print(f"One call at a time ({args.single_calls:,} appends each, interleaved in blocks of 50).")
        print()
        print("| path | p50 ms | p90 ms | p99 ms |")
        print("| --- | ---: | ---: | ---: |")
        single = anyio.run(run_single, directory, args.single_calls)
        for label, samples in single.items():
            q = statistics.quantiles(samples[100:], n=100, method="inclusive")
            print(f"| {label} | {q[49] * 1e3:.3f} | {q[89] * 1e3:.3f} | {q[98] * 1e3:.3f} |", flush=True)
        print()
        print("Closed loop: N writers each appending back to back (saturation).")
        print()
        print("| synchronous | writers | appends/s | p50 ms | p99 ms |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for sync in MODES:
            for writers in args.writers:
                rate, p50, p99 = anyio.run(run_load, directory, sync, writers, args.seconds)
                print(f"| {sync} | {writers} | {rate:,.0f} | {p50:.3f} | {p99:.3f} |", flush=True)
        print()
        print("Open loop: calls arrive at a fixed rate (latency added per call at that load).")
        print()
        print("| synchronous | offered calls/s | achieved/s | p50 ms | p99 ms |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for sync in MODES:
            for rate in args.rates:
                achieved, p50, p99 = anyio.run(run_rate, directory, sync, rate, args.seconds)
                print(f"| {sync} | {rate:,} | {achieved:,.0f} | {p50:.3f} | {p99:.3f} |", flush=True)
        if args.verify_entries:
            path = directory / "big.db"
            built = build_big_log(path, directory / "key.pem", args.verify_entries)
            size = path.stat().st_size / 1e6
            key = load_or_create_signing_key(directory / "key.pem")
            report = verify(path, key.public_key())
            assert report.ok, report.problem
            print()
            print("| verify entries | file MB | build s | verify s | entries/s |")
            print("| ---: | ---: | ---: | ---: | ---: |")
            print(
                f"| {report.entries:,} | {size:,.0f} | {built:.1f} | {report.elapsed_s:.2f} "
                f"| {report.entries / report.elapsed_s:,.0f} |"
            )


if __name__ == "__main__":
    main()
