"""What the pin store holds and what a review returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from mcp import types
from pydantic import BaseModel, ConfigDict

from mcp_guard.findings import Finding


class QuarantineReason(StrEnum):
    NEW = "new"
    """Never seen before, and the mode is ``require_approval``."""
    CHANGED = "changed"
    """The definition differs from its pin: a possible rug pull."""
    POISONED = "poisoned"
    """The definition has tool-poisoning findings (new, changed or even pinned)."""


class PendingState(StrEnum):
    PENDING = "pending"
    REJECTED = "rejected"
    """An operator looked at it and said no; it stays hidden until the upstream changes it again."""


class ToolState(StrEnum):
    PINNED = "pinned"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Pin:
    """The approved definition of one upstream tool."""

    upstream: str
    name: str
    fingerprint: str
    definition: Mapping[str, Any]
    pinned_at: datetime
    pinned_by: str
    forced: bool = False
    """Accepted with ``--force`` despite poisoning findings (they are not held against it again)."""


@dataclass(frozen=True)
class PendingChange:
    """A definition waiting for an operator: new, changed or poisoned."""

    upstream: str
    name: str
    reason: QuarantineReason
    state: PendingState
    fingerprint: str
    definition: Mapping[str, Any]
    findings: tuple[Finding, ...]
    first_seen: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None


@dataclass(frozen=True)
class ToolRecord:
    """Everything the store knows about one (upstream, tool): its pin, its pending change, or both."""

    upstream: str
    name: str
    pin: Pin | None
    pending: PendingChange | None

    @property
    def state(self) -> ToolState:
        if self.pending is None:
            return ToolState.PINNED
        if self.pending.state is PendingState.REJECTED:
            return ToolState.REJECTED
        return ToolState.QUARANTINED


@dataclass(frozen=True)
class QuarantinedTool:
    """A tool the gateway must hide and refuse (answer as an unknown tool)."""

    upstream: str
    name: str
    reason: QuarantineReason
    findings: tuple[Finding, ...]
    old_fingerprint: str | None
    new_fingerprint: str
    rejected: bool = False


@dataclass(frozen=True)
class PinReview:
    """The outcome of reviewing one upstream's tool listing against the pins."""

    allowed: tuple[types.Tool, ...]
    """The tools that may be exposed, in listing order, exactly as the upstream sent them."""
    quarantined: tuple[QuarantinedTool, ...]
    events: list[dict[str, Any]] = field(default_factory=list)
    """``tool_pin`` audit records for what changed in this review (empty when nothing did)."""


@dataclass(frozen=True)
class PinRefresh:
    """What changed in the pin database since this store last looked (e.g. a CLI ``accept``)."""

    upstreams: frozenset[str]
    """Upstreams whose pins or pending changes differ: review their current listing again."""
    events: list[dict[str, Any]]
    """``tool_pin`` audit records of operator decisions, each handed out exactly once."""


EventName = Literal["pinned", "quarantined", "poisoned", "restored", "accepted", "rejected"]


class PinEvent(BaseModel):
    """One ``tool_pin`` audit record.

    ``pinned``: first sight, pinned automatically (trust on first use).
    ``quarantined``: a new (``require_approval``) or changed definition is held (``reason``).
    ``poisoned``: a definition with poisoning findings is held.
    ``restored``: a quarantined tool's definition went back to its pin.
    ``accepted`` / ``rejected``: an operator decided on a pending definition.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: EventName
    upstream: str
    tool: str
    fingerprint: str
    previous_fingerprint: str | None = None
    reason: QuarantineReason | None = None
    by: str | None = None
    forced: bool = False
    findings: list[dict[str, Any]] = []
    definition: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def finding_records(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json", exclude_none=True) for f in findings]
