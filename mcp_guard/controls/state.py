"""Where control state lives: one interface, an in-process default.

:class:`ControlState` is everything the controls need from storage, expressed as
operations that are atomic per key, so a shared backend (Redis: a Lua script per
operation, keys with TTLs) can implement it without the controls changing:

- token buckets: ``bucket_take`` / ``bucket_give_back``
- calendar counters: ``counter_add`` (conditional: all-or-nothing against the maxima),
  ``counter_sub``, ``counter_get``
- concurrency slots: ``slot_acquire`` / ``slot_release`` / ``slot_count``
- breaker records: ``breaker_get`` / ``breaker_put`` / ``breaker_items``

A call checked against several controls takes from each in turn and gives back what it
took if a later one refuses (compensation, not a transaction): under contention a
shared backend may refuse a call that would have fitted a moment later, never admit
one over a limit.

Methods are ``async`` for backends that do I/O; :class:`MemoryState` never suspends.
Keys are strings (``<control id>|<dim>=<value>|...``); periods are UTC epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mcp_guard.controls.breaker import BreakerRecord
from mcp_guard.controls.ratelimit import Bucket, give_back, take
from mcp_guard.errors import GuardError

PRUNE_AT = 10_000
"""Full buckets are forgotten when the bucket count reaches this (then twice the live count)."""


class ChargeNotRecorded(GuardError):
    """:meth:`ControlState.counter_add` could not record a charge durably; nothing was added."""


@dataclass(slots=True)
class Usage:
    """A calendar counter: calls and cost units used in one period."""

    calls: int = 0
    cost: float = 0.0
    end: float = 0.0  # UTC epoch seconds when the period ends (for expiry)


class ControlState(Protocol):
    """Storage for counters, buckets, slots and breaker records (see the module docstring)."""

    async def bucket_take(self, key: str, rate: float, burst: float, amount: float, now: float) -> float:
        """Take ``amount`` tokens; 0.0 when taken, else seconds until they would be there."""
        ...

    async def bucket_give_back(self, key: str, burst: float, amount: float) -> None:
        """Return tokens taken by :meth:`bucket_take` for a call that did not go ahead."""
        ...

    async def counter_add(
        self,
        key: str,
        period: float,
        *,
        end: float,
        calls: int,
        cost: float,
        max_calls: int | None,
        max_cost: float | None,
    ) -> tuple[bool, Usage]:
        """Add to the counter of ``period`` unless that would exceed a maximum.

        Returns ``(added, usage)``: the usage after adding, or as it was when refused.

        Raises:
            ChargeNotRecorded: a backend that promises durability could not store the
                charge; the counter is as it was (the call must not go ahead).
        """
        ...

    async def counter_sub(self, key: str, period: float, calls: int, cost: float) -> None:
        """Undo a :meth:`counter_add` for a call that did not go ahead.

        Never raises for a storage failure: a give-back that cannot be stored yet leaves the
        stored counter too high (the safe side) until it can be.
        """
        ...

    async def counter_get(self, key: str, period: float) -> Usage:
        """The usage of ``period`` (zero when nothing was counted)."""
        ...

    async def slot_acquire(self, key: str, limit: int) -> bool:
        """Take one of ``limit`` slots; False when all are taken."""
        ...

    async def slot_release(self, key: str) -> None:
        """Give back a slot taken by :meth:`slot_acquire`."""
        ...

    async def slot_count(self, key: str) -> int:
        """Slots in use."""
        ...

    async def breaker_get(self, key: str) -> BreakerRecord:
        """The record of a breaker (a fresh closed one when unknown)."""
        ...

    async def breaker_put(self, key: str, record: BreakerRecord) -> None:
        """Store a record changed by the caller."""
        ...

    async def breaker_items(self) -> list[tuple[str, BreakerRecord]]:
        """Every known breaker record, for operators."""
        ...


class MemoryState:
    """The in-process :class:`ControlState`: dicts, no I/O, nothing survives a restart.

    Not thread-safe: use it from one event loop (the gateway's).
    """

    def __init__(self) -> None:
        self.buckets: dict[str, Bucket] = {}
        self.counters: dict[tuple[str, float], Usage] = {}
        self.slots: dict[str, int] = {}
        self.breakers: dict[str, BreakerRecord] = {}
        self._next_prune = PRUNE_AT

    async def bucket_take(self, key: str, rate: float, burst: float, amount: float, now: float) -> float:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self._next_prune:
                self.prune_buckets(now)
                self._next_prune = 2 * len(self.buckets) + PRUNE_AT
            bucket = self.buckets[key] = Bucket(burst, now)
        return take(bucket, rate, burst, amount, now)

    async def bucket_give_back(self, key: str, burst: float, amount: float) -> None:
        bucket = self.buckets.get(key)
        if bucket is not None:
            give_back(bucket, burst, amount)

    async def counter_add(
        self,
        key: str,
        period: float,
        *,
        end: float,
        calls: int,
        cost: float,
        max_calls: int | None,
        max_cost: float | None,
    ) -> tuple[bool, Usage]:
        usage = self.counters.get((key, period))
        if usage is None:
            usage = self.counters[key, period] = Usage(end=end)
        if (max_calls is not None and usage.calls + calls > max_calls) or (
            max_cost is not None and usage.cost + cost > max_cost
        ):
            return False, usage
        usage.calls += calls
        usage.cost += cost
        self._changed(key, period)
        return True, usage

    async def counter_sub(self, key: str, period: float, calls: int, cost: float) -> None:
        usage = self.counters.get((key, period))
        if usage is not None:
            usage.calls = max(usage.calls - calls, 0)
            usage.cost = max(usage.cost - cost, 0.0)
            self._changed(key, period)

    async def counter_get(self, key: str, period: float) -> Usage:
        return self.counters.get((key, period)) or Usage()

    async def slot_acquire(self, key: str, limit: int) -> bool:
        used = self.slots.get(key, 0)
        if used >= limit:
            return False
        self.slots[key] = used + 1
        return True

    async def slot_release(self, key: str) -> None:
        used = self.slots.get(key, 0) - 1
        if used > 0:
            self.slots[key] = used
        else:
            self.slots.pop(key, None)

    async def slot_count(self, key: str) -> int:
        return self.slots.get(key, 0)

    async def breaker_get(self, key: str) -> BreakerRecord:
        rec = self.breakers.get(key)
        if rec is None:
            rec = self.breakers[key] = BreakerRecord()
        return rec

    async def breaker_put(self, key: str, record: BreakerRecord) -> None:
        self.breakers[key] = record

    async def breaker_items(self) -> list[tuple[str, BreakerRecord]]:
        return sorted(self.breakers.items())

    def prune_counters(self, wall_ts: float) -> int:
        """Forget counters of periods that ended by ``wall_ts`` (UTC epoch seconds)."""
        old = [k for k, u in self.counters.items() if u.end <= wall_ts]
        for k in old:
            del self.counters[k]
        return len(old)

    def prune_buckets(self, now: float) -> int:
        """Forget buckets that are full again by ``now``: a full bucket is what a new one is."""
        full = [k for k, b in self.buckets.items() if b.full_at <= now]
        for key in full:
            del self.buckets[key]
        return len(full)

    def _changed(self, key: str, period: float) -> None:
        """Hook for persistence (see :class:`mcp_guard.controls.sqlite_state.EmbeddedState`)."""
