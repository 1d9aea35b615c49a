"""The pure decision for one tool definition: expose it, pin it, or hold it, and why."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_guard.findings import Finding
from mcp_guard.inspection import scan_tool_definition
from mcp_guard.pinning.config import PinMode, PinningConfig
from mcp_guard.pinning.models import Pin, QuarantineReason

Scanner = Callable[[Mapping[str, Any]], list[Finding]]


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
    view: Mapping[str, Any],
    fingerprint: str,
    pin: Pin | None,
    config: PinningConfig,
    scan: Scanner = scan_tool_definition,
) -> Verdict:
    """Decide on one definition (its pinned ``view`` and ``fingerprint``) given its ``pin``.

    Poisoning is checked first and wins over everything except a pin accepted with
    ``force`` for this very fingerprint: an improved detector can quarantine a
    definition that was pinned before it learned to see the attack.
    """
    unchanged = pin is not None and pin.fingerprint == fingerprint
    findings: tuple[Finding, ...] = ()
    if config.hide_poisoned and not (unchanged and pin is not None and pin.forced):
        findings = tuple(f for f in scan(view) if f.category == "poisoning")
    if findings:
        return Verdict(QuarantineReason.POISONED, findings)
    if unchanged:
        return Verdict(None)
    if pin is not None:
        return Verdict(QuarantineReason.CHANGED)
    if config.mode is PinMode.TRUST_ON_FIRST_USE:
        return Verdict(None, auto_pin=True)
    return Verdict(QuarantineReason.NEW)
