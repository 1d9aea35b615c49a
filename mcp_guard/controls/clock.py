"""Time as an input: a monotonic reading for buckets and breakers, a wall reading for budgets.

Every control takes an :class:`Instant` (or a monotonic float) instead of reading the
clock itself, so behaviour is deterministic under test. :class:`SystemClock` is the
production source; tests build instants directly or use a hand-advanced fake.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Instant:
    """One reading of both clocks.

    ``monotonic`` is seconds on a clock that never goes backwards (token buckets,
    breakers); ``wall`` is an aware datetime (calendar budgets, reset times).
    """

    monotonic: float
    wall: datetime


class Clock(Protocol):
    """A source of :class:`Instant` readings."""

    def now(self) -> Instant: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clocks: :func:`time.monotonic` and the current UTC time."""

    def now(self) -> Instant:
        return Instant(time.monotonic(), datetime.now(UTC))

    def monotonic(self) -> float:
        return time.monotonic()
