"""Helpers for the audit tests: a fixed clock, sample records, a populated log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mcp_guard.audit import AuditConfig, SqliteAuditLog
from mcp_guard.signing import load_signing_key

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class StepClock:
    """A deterministic clock: each reading is one second after the previous one."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def public_key(config: AuditConfig) -> Ed25519PublicKey:
    return load_signing_key(config.signing_key_path).public_key()


def decision_record(i: int) -> dict[str, Any]:
    tools = ("read_file", "send_email", "run_sql")
    decision = ("ALLOW", "BLOCK", "APPROVAL_REQUIRED", "WARN")[i % 4]
    return {
        "principal": {"user": f"user{i % 2}", "agent": "claude" if i % 3 else "cursor"},
        "session": "s1",
        "tool": tools[i % 3],
        "arguments": {"path": f"/tmp/{i}", "note": "[REDACTED:US_SSN]"},
        "args_digest": f"{i:064x}",
        "findings": [{"type": "US_SSN"}] if i % 5 == 0 else [],
        "risk": i * 1.5,
        "rules": [f"rule-{i % 3}"],
        "decision": decision,
        "reason": "secret in arguments" if decision == "BLOCK" else "ok",
        "latency_ms": 0.25,
    }


def populate(config: AuditConfig, n: int, clock: Callable[[], datetime] | None = None) -> None:
    """Append ``n`` decision entries (and close cleanly, writing the final checkpoint)."""

    async def run() -> None:
        async with SqliteAuditLog.open(config, clock=clock or StepClock()) as log:
            for i in range(1, n + 1):
                await log.append("decision", decision_record(i))

    anyio.run(run)
