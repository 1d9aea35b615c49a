"""The audit log's data: configuration, entries, receipts, checkpoints, errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from mcp_guard.errors import GuardError

KIND_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
KIND_RE = re.compile(KIND_PATTERN)

KNOWN_KINDS: dict[str, str] = {
    "decision": "the gateway's decision on a tool call, written before the call is forwarded",
    "outcome": "what happened after forwarding: result status, output findings, latency",
    "approval": "a human approval request, grant, denial or expiry",
    "policy_reload": "a policy or configuration was (re)loaded, with its digest",
    "tool_pin": "a tool definition was pinned, or drifted from its pin",
    "breaker": "a circuit breaker opened or closed for an upstream or a principal",
    "config_error": "a configuration was rejected; the previous one stays in force",
}
"""The kinds the gateway writes. Any kind matching ``KIND_PATTERN`` is accepted."""

GENESIS_HASH = "0" * 64
"""``prev_hash`` of entry 1."""


class AuditError(GuardError):
    """Base class of audit-log errors."""


class AuditUnavailableError(AuditError):
    """The audit log cannot durably record an entry; the caller must fail closed.

    ``reason`` says why (locked, read-only, removed, closed, I/O error...).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"audit log unavailable: {reason}")


class RetentionError(AuditError):
    """A prune would delete entries still inside the minimum retention period, or cannot anchor."""


def format_time(t: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: fixed width, so text order is time order.

    Raises:
        ValueError: ``t`` is naive (has no time zone).
    """
    if t.tzinfo is None:
        raise ValueError("audit times must be time-zone aware")
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    if t.year < 1000:  # strftime's %Y does not pad to four digits, isoformat does
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return t.isoformat(timespec="microseconds")[:26] + "Z"  # "...SS.ffffff+00:00": the same text


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 time or date; naive input is taken as UTC.

    Raises:
        ValueError: ``text`` is not a time.
    """
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class AuditConfig(BaseModel):
    """Where and how the audit log is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Path("var/audit.db")
    """The SQLite database file."""
    signing_key_path: Path = Path("var/keys/audit-signing.pem")
    """The Ed25519 private key signing checkpoints (created on first use, mode 0600)."""
    checkpoint_every: int = Field(default=1000, ge=1)
    """Write a signed checkpoint after this many entries..."""
    checkpoint_interval_s: float = Field(default=60.0, gt=0)
    """...or when unsigned entries are this old, whichever comes first; and always on clean close."""
    retention_days: int = Field(default=183, ge=0)
    """Minimum retention: ``prune`` refuses to delete entries younger than this."""
    synchronous: Literal["FULL", "OVERLAPPED", "NORMAL"] = "FULL"
    """When entries reach the disk. FULL: every commit is fsynced before ``append``
    returns (a decision survives power loss before its call is forwarded). OVERLAPPED:
    a commit is written (survives a killed gateway) before ``append`` returns and fsynced
    straight after, beside the caller; ``durable`` waits for it (the gateway: before it
    returns the call's result). NORMAL: SQLite's WAL ``NORMAL``, survives a killed gateway,
    not power loss. See docs/audit.md, Durability."""
    busy_timeout_ms: int = Field(default=2000, ge=0)
    """How long a write waits for a lock held by another connection before failing closed."""
    max_batch: int = Field(default=2000, ge=1)
    """Most entries committed in one transaction."""
    max_pending: int = Field(default=100_000, ge=1)
    """Most entries waiting for the writer thread; beyond it appends fail closed (the disk
    cannot keep up, and waiting longer would only turn into client timeouts)."""


class AuditReceipt(NamedTuple):
    """Proof that an entry is durably committed: its id, sequence number and hash.

    A plain named tuple: the log builds one per entry from values it has just written,
    so there is nothing to validate (a pydantic model cost a validation per call)."""

    id: str
    seq: int
    hash: str


class AuditEntry(BaseModel):
    """One entry of the chain as stored and exported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    id: str
    time: str
    kind: str
    record: dict[str, Any]
    prev_hash: str
    hash: str


class Checkpoint(BaseModel):
    """A signed statement: "the chain's entry ``seq`` has hash ``hash``; the log starts at ``first_seq``"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    hash: str
    time: str
    first_seq: int
    key_id: str
    signature: str
