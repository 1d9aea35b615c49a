"""Circuit breakers: stop calling an upstream (or tool) that keeps failing.

CLOSED counts outcomes; it opens after ``consecutive_failures`` failures in a row, or
when the failure rate over a sliding ``window`` reaches ``error_rate`` with at least
``min_calls`` calls in it. OPEN refuses at once, with the time until the next probe as
``retry_after``. After ``open_for`` seconds it is HALF_OPEN: up to ``half_open_probes``
calls go through; the first success closes it, any failure reopens it. A probe whose
outcome is never reported (cancelled call) stops holding its permit after ``open_for``.

Every change of state, and every fresh set of half-open permits, starts a new
*generation*. A call is admitted under one; its outcome counts only while that
generation lasts. So a slow call admitted while the breaker was closed cannot close (or
reopen) it when it answers during a later half-open period, nor can a probe of an earlier
opening, or one whose permit lapsed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from mcp_guard.controls.config import BreakerSpec
from mcp_guard.controls.keys import GlobMatcher, glob_matcher
from mcp_guard.decision import Decision, Verdict

SLICES = 10
"""The error-rate window is kept as this many time slices (bounded memory at any call rate)."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class BreakerRecord:
    """The mutable state of one breaker (one per breaker id and upstream or tool)."""

    state: BreakerState = BreakerState.CLOSED
    generation: int = 0
    consecutive: int = 0
    opened_at: float = 0.0
    probes: int = 0
    probe_at: float = 0.0
    # (slice index, calls, failures), oldest first
    window: deque[list[int]] = field(default_factory=deque)


class BreakerTransition(BaseModel):
    """A state change, handed to the listener (the gateway audits and logs it)."""

    model_config = ConfigDict(frozen=True)

    breaker: str
    target: str
    old: BreakerState
    new: BreakerState
    reason: str
    at: float


BreakerListener = Callable[[BreakerTransition], None]


def release_probe(rec: BreakerRecord, generation: int) -> bool:
    """Give back the half-open permit of a call admitted under ``generation``.

    Nothing is given back for a call admitted under another generation: it held no permit
    of this half-open period, whose count started afresh. Returns whether the record changed.
    """
    if rec.state is not BreakerState.HALF_OPEN or rec.generation != generation or rec.probes <= 0:
        return False
    rec.probes -= 1
    return True


class Breaker:
    """A compiled ``breakers:`` item: the state machine, over records it does not own."""

    __slots__ = ("matches_tool", "matches_upstream", "slice", "spec")

    def __init__(self, spec: BreakerSpec) -> None:
        self.spec = spec
        self.matches_tool: GlobMatcher = glob_matcher(spec.tools)
        self.matches_upstream: GlobMatcher = glob_matcher(spec.upstreams)
        self.slice = spec.window / SLICES

    def target(self, upstream: str, tool: str) -> str:
        return upstream if self.spec.per == "upstream" else tool

    def admit(
        self, rec: BreakerRecord, target: str, now: float
    ) -> tuple[float | None, BreakerTransition | None]:
        """Let a call through (``None``) or refuse it (seconds until the next probe)."""
        if rec.state is BreakerState.CLOSED:
            return None, None
        spec = self.spec
        change = None
        if rec.state is BreakerState.OPEN:
            wait = rec.opened_at + spec.open_for - now
            if wait > 0:
                return wait, None
            rec.state, rec.probes = BreakerState.HALF_OPEN, 0
            rec.generation += 1
            change = (BreakerState.OPEN, BreakerState.HALF_OPEN, f"open for {spec.open_for:g} s; probing")
        elif rec.probes >= spec.half_open_probes:
            wait = rec.probe_at + spec.open_for - now
            if wait > 0:
                return wait, None
            rec.probes = 0  # lost probes (cancelled, never reported) give their permits back
            rec.generation += 1  # and, should they answer after all, no longer decide
        rec.probes += 1
        rec.probe_at = now
        return None, (None if change is None else self._transition(target, *change, now))

    def record(
        self, rec: BreakerRecord, target: str, failed: bool, now: float, generation: int | None = None
    ) -> BreakerTransition | None:
        """Count the outcome of a call admitted under ``generation``; returns the state change
        it caused, if any. An outcome from another generation is ignored; ``None`` means the
        current one (for callers that do not track admissions)."""
        spec = self.spec
        if generation is not None and generation != rec.generation:
            return None
        if rec.state is BreakerState.HALF_OPEN:
            if failed:
                self._open(rec, now)
                return self._transition(
                    target, BreakerState.HALF_OPEN, BreakerState.OPEN, "probe failed", now
                )
            rec.state, rec.consecutive, rec.probes = BreakerState.CLOSED, 0, 0
            rec.generation += 1
            rec.window.clear()
            return self._transition(
                target, BreakerState.HALF_OPEN, BreakerState.CLOSED, "probe succeeded", now
            )
        if rec.state is BreakerState.OPEN:
            return None  # a call admitted before the breaker opened; already decided
        rec.consecutive = rec.consecutive + 1 if failed else 0
        if spec.consecutive_failures is not None and rec.consecutive >= spec.consecutive_failures:
            self._open(rec, now)
            reason = f"{spec.consecutive_failures} consecutive failures"
            return self._transition(target, BreakerState.CLOSED, BreakerState.OPEN, reason, now)
        if spec.error_rate is None:
            return None
        calls, failures = self._count(rec, failed, now)
        if calls >= spec.min_calls and failures / calls >= spec.error_rate:
            self._open(rec, now)
            reason = (
                f"{failures} of {calls} calls failed in {spec.window:g} s (threshold {spec.error_rate:.0%})"
            )
            return self._transition(target, BreakerState.CLOSED, BreakerState.OPEN, reason, now)
        return None

    def error_rate(self, rec: BreakerRecord, now: float) -> tuple[int, int]:
        """``(calls, failures)`` in the window ending at ``now``."""
        self._prune(rec, int(now // self.slice))
        return sum(s[1] for s in rec.window), sum(s[2] for s in rec.window)

    def refusal(self, target: str, retry_after: float) -> Verdict:
        spec = self.spec
        return Verdict(
            decision=Decision.BLOCK,
            rules=(spec.id,),
            reason=(
                f"Circuit breaker '{spec.id}' is open for {spec.per} '{target}' after repeated failures; "
                f"next probe in {retry_after:.1f} s."
            ),
            details={"control": "circuit_breaker", "retry_after": round(retry_after, 3), "target": target},
        )

    def _count(self, rec: BreakerRecord, failed: bool, now: float) -> tuple[int, int]:
        index = int(now // self.slice)
        self._prune(rec, index)
        if not rec.window or rec.window[-1][0] != index:
            rec.window.append([index, 0, 0])
        last = rec.window[-1]
        last[1] += 1
        last[2] += failed
        return sum(s[1] for s in rec.window), sum(s[2] for s in rec.window)

    @staticmethod
    def _prune(rec: BreakerRecord, index: int) -> None:
        while rec.window and rec.window[0][0] <= index - SLICES:
            rec.window.popleft()

    @staticmethod
    def _open(rec: BreakerRecord, now: float) -> None:
        rec.state, rec.opened_at, rec.probes, rec.consecutive = BreakerState.OPEN, now, 0, 0
        rec.generation += 1
        rec.window.clear()

    def _transition(
        self, target: str, old: BreakerState, new: BreakerState, reason: str, now: float
    ) -> BreakerTransition:
        return BreakerTransition(breaker=self.spec.id, target=target, old=old, new=new, reason=reason, at=now)
