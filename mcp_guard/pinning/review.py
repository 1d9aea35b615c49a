"""Planning a review: from one upstream's listing and its stored pins to what to expose and write.

Two steps: :func:`sight` does the CPU work (views, fingerprints, the poisoning scan) and
runs in a worker thread before the store's transaction; :func:`plan_review` is pure and
cheap (no I/O, the time is an input), so the store applies its plan inside one short
transaction without stalling the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcp import types

from mcp_guard.findings import Finding
from mcp_guard.pinning.config import PinningConfig
from mcp_guard.pinning.evaluate import ScanCache, judge
from mcp_guard.pinning.fingerprint import fingerprint_view, pinned_view
from mcp_guard.pinning.models import (
    PendingChange,
    PendingState,
    Pin,
    PinEvent,
    QuarantinedTool,
    QuarantineReason,
    finding_records,
)

TOFU_USER = "trust-on-first-use"


@dataclass
class ReviewPlan:
    allowed: list[types.Tool] = field(default_factory=list)
    held: list[QuarantinedTool] = field(default_factory=list)
    events: list[PinEvent] = field(default_factory=list)
    new_pins: list[Pin] = field(default_factory=list)
    new_pending: list[PendingChange] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    """Tool names whose pending change is resolved (back to the pin, or pinned on first sight)."""


@dataclass(frozen=True)
class Sighting:
    """One listed tool as a review sees it."""

    tool: types.Tool
    view: dict[str, Any]
    fingerprint: str
    findings: tuple[Finding, ...]
    """Its poisoning findings (none when ``hide_poisoned`` is off)."""


def sight(
    tools: Sequence[types.Tool],
    config: PinningConfig,
    scans: ScanCache,
    checkpoint: Callable[[], None] = lambda: None,
) -> list[Sighting]:
    """Every tool in ``tools`` (a repeated name keeps the first, as the catalog does), with
    its pinned view, fingerprint and findings. CPU-bound: meant for a worker thread, with
    ``checkpoint`` (called between tools) raising once the review is cancelled.

    Raises:
        ValueError: a definition holds a lone surrogate.
    """
    out: list[Sighting] = []
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            continue
        checkpoint()
        seen.add(tool.name)
        view = pinned_view(tool)
        fp = fingerprint_view(view)
        out.append(Sighting(tool, view, fp, scans.findings(fp, view) if config.hide_poisoned else ()))
    return out


def plan_review(
    upstream: str,
    sightings: Sequence[Sighting],
    *,
    pins: Mapping[str, Pin],
    pending: Mapping[str, PendingChange],
    config: PinningConfig,
    now: datetime,
) -> ReviewPlan:
    """Decide on every sighted tool (see :func:`sight`).

    Events are produced only for transitions, so planning the same listing against the
    state it produced yields no events and no writes.
    """
    plan = ReviewPlan()
    for seen in sightings:
        _plan_tool(
            plan,
            upstream,
            seen,
            pin=pins.get(seen.tool.name),
            waiting=pending.get(seen.tool.name),
            config=config,
            now=now,
        )
    return plan


def _plan_tool(
    plan: ReviewPlan,
    upstream: str,
    seen: Sighting,
    *,
    pin: Pin | None,
    waiting: PendingChange | None,
    config: PinningConfig,
    now: datetime,
) -> None:
    tool, view, fp = seen.tool, seen.view, seen.fingerprint
    verdict = judge(fp, seen.findings, pin, config)
    reason = verdict.reason
    if reason is None:
        plan.allowed.append(tool)
        if verdict.auto_pin:
            plan.new_pins.append(Pin(upstream, tool.name, fp, view, now, TOFU_USER))
            plan.events.append(
                PinEvent(
                    event="pinned",
                    by=TOFU_USER,
                    definition=view,
                    upstream=upstream,
                    tool=tool.name,
                    fingerprint=fp,
                )
            )
        if waiting is not None:
            plan.cleared.append(tool.name)
            if not verdict.auto_pin:
                plan.events.append(
                    PinEvent(
                        event="restored",
                        previous_fingerprint=waiting.fingerprint,
                        upstream=upstream,
                        tool=tool.name,
                        fingerprint=fp,
                    )
                )
        return
    old = pin.fingerprint if pin is not None else None
    rejected = False
    if waiting is not None and waiting.fingerprint == fp and waiting.reason is reason:
        rejected = waiting.state is PendingState.REJECTED
    else:
        plan.new_pending.append(
            PendingChange(upstream, tool.name, reason, PendingState.PENDING, fp, view, verdict.findings, now)
        )
        plan.events.append(
            PinEvent(
                event="poisoned" if reason is QuarantineReason.POISONED else "quarantined",
                previous_fingerprint=old,
                reason=reason,
                findings=finding_records(verdict.findings),
                definition=view,
                upstream=upstream,
                tool=tool.name,
                fingerprint=fp,
            )
        )
    plan.held.append(QuarantinedTool(upstream, tool.name, reason, verdict.findings, old, fp, rejected))
