"""The pure decision for one tool definition: expose it, pin it, or hold it, and why."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_guard.findings import Finding
from mcp_guard.inspection import scan_tool_definition
from mcp_guard.pinning.config import PinMode, PinningConfig
from mcp_guard.pinning.models import Pin, QuarantineReason

Scanner = Callable[[Mapping[str, Any]], list[Finding]]
SCAN_CACHE_SIZE = 50_000
"""Definitions whose findings are remembered (a few upstreams at their ``max_listing_items``)."""


@dataclass(frozen=True)
class Verdict:
    reason: QuarantineReason | None
    """``None``: expose the tool."""
    findings: tuple[Finding, ...] = ()
    auto_pin: bool = False
    """Pin this definition now (first sight under trust on first use)."""

    @property
    def allowed(self) -> bool:
        return self.reason is None


def judge(
    fingerprint: str,
    findings: tuple[Finding, ...],
    pin: Pin | None,
    config: PinningConfig,
) -> Verdict:
    """Decide on one definition (its ``fingerprint`` and poisoning ``findings``) given its ``pin``.

    Poisoning wins over everything except a pin accepted with ``force`` for this very
    fingerprint: an improved detector can quarantine a definition that was pinned before
    it learned to see the attack.
    """
    unchanged = pin is not None and pin.fingerprint == fingerprint
    if findings and not (unchanged and pin is not None and pin.forced):
        return Verdict(QuarantineReason.POISONED, findings)
    if unchanged:
        return Verdict(None)
    if pin is not None:
        return Verdict(QuarantineReason.CHANGED)
    if config.mode is PinMode.TRUST_ON_FIRST_USE:
        return Verdict(None, auto_pin=True)
    return Verdict(QuarantineReason.NEW)


class ScanCache:
    """Poisoning findings by fingerprint, so a listing that comes back unchanged is not scanned again.

    Bounded (least recently used first out) and safe to use from several worker threads.
    """

    def __init__(self, scan: Scanner = scan_tool_definition, size: int = SCAN_CACHE_SIZE) -> None:
        self._scan = scan
        self._size = size
        self._found: OrderedDict[str, tuple[Finding, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def findings(self, fingerprint: str, view: Mapping[str, Any]) -> tuple[Finding, ...]:
        """The poisoning findings of ``view`` (whose fingerprint is ``fingerprint``)."""
        with self._lock:
            if fingerprint in self._found:
                self._found.move_to_end(fingerprint)
                return self._found[fingerprint]
        found = tuple(f for f in self._scan(view) if f.category == "poisoning")
        with self._lock:
            self._found[fingerprint] = found
            while len(self._found) > self._size:
                self._found.popitem(last=False)
        return found
