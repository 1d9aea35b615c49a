"""Concurrency caps: at most ``max`` calls in flight per key, refused (or waited for) beyond.

``async with controls.concurrency(call) as slot:`` takes one slot under every matching
cap and key, and gives them all back when the block exits — normally, by exception or
by cancellation. When a cap is full the call is refused at once with
:class:`ConcurrencyRefused`, unless the cap has ``wait > 0``: then the call waits (in
real time, on the event loop's clock) for a release, up to that bound. Each time it
wakes it asks again which caps apply (a reload may have raised, lowered or removed
them) and keeps to those; the bound still counts from when it started waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol

import anyio

from mcp_guard.controls.config import ConcurrencySpec
from mcp_guard.controls.keys import GlobMatcher, describe, glob_matcher
from mcp_guard.controls.ratelimit import scope_matcher
from mcp_guard.controls.state import ControlState, MemoryState
from mcp_guard.decision import Decision, Verdict
from mcp_guard.errors import GuardError

if TYPE_CHECKING:
    from mcp_guard.controls.plans import ControlCall


class ControlRefused(GuardError):
    """A control refused a call; ``verdict`` says which and why."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.reason)


class ConcurrencyRefused(ControlRefused):
    """Every slot of a concurrency cap is taken (and waiting, if allowed, did not help)."""


class ConcurrencyLimit:
    """A compiled ``concurrency:`` item."""

    __slots__ = ("matches_tool", "matches_upstream", "scope", "spec")

    def __init__(self, spec: ConcurrencySpec) -> None:
        self.spec = spec
        self.matches_tool: GlobMatcher = glob_matcher(spec.tools)
        self.matches_upstream: GlobMatcher = glob_matcher(spec.upstreams)
        self.scope = scope_matcher(spec.scope)

    def refusal(self, label: str, waited: float) -> Verdict:
        spec = self.spec
        waiting = f" (waited {waited:.1f} s)" if waited > 0 else ""
        return Verdict(
            decision=Decision.BLOCK,
            rules=(spec.id,),
            reason=(
                f"Concurrency cap '{spec.id}' reached for {label}: "
                f"{spec.max} calls already in flight{waiting}."
            ),
            details={"control": "concurrency", "max_in_flight": spec.max, "key": label},
        )


Wanted = Sequence[tuple[ConcurrencyLimit, str]]
"""The caps a call must hold a slot under: (cap, counter key), one per key."""


class Releases:
    """Wakes waiters when any slot is released (only allocates while someone waits)."""

    __slots__ = ("_event", "_waiting")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._waiting = 0

    def notify(self) -> None:
        if self._waiting:
            self._event.set()
            self._event = anyio.Event()

    async def wait(self, bound: float) -> None:
        self._waiting += 1
        try:
            with anyio.move_on_after(bound):
                await self._event.wait()
        finally:
            self._waiting -= 1


class CapsInForce(Protocol):
    """Where a waiting call asks again which caps apply to it (a reload may change them)."""

    def caps_in_force(self, call: ControlCall) -> Wanted: ...


class Slot(NamedTuple):
    """The slots a call holds: ``keys`` (one per cap and key) and seconds spent waiting."""

    keys: tuple[str, ...]
    waited: float


class SlotGuard:
    """The async context manager returned by ``Controls.concurrency(call)``.

    Raises (on enter):
        ConcurrencyRefused: a cap is full; its ``verdict`` names the cap.
    """

    __slots__ = ("_call", "_held", "_releases", "_shield", "_source", "_state", "_wanted")

    def __init__(
        self,
        state: ControlState,
        releases: Releases,
        wanted: Wanted,
        source: CapsInForce,
        call: ControlCall,
    ) -> None:
        self._state = state
        self._releases = releases
        self._wanted = wanted
        self._source = source
        self._call = call
        self._held: list[str] = []
        # In-memory releases never suspend, so cancellation cannot interrupt them.
        self._shield = not isinstance(state, MemoryState)

    async def __aenter__(self) -> Slot:
        started: float | None = None
        while self._wanted:
            refused = await self._try()
            if refused is None:
                break
            limit, key = refused
            now = anyio.current_time()
            if started is None:
                started = now
            remaining = started + limit.spec.wait - now
            if remaining <= 0:
                raise ConcurrencyRefused(limit.refusal(describe(key), now - started))
            await self._releases.wait(remaining)
            self._wanted = self._source.caps_in_force(self._call)
        waited = 0.0 if started is None else anyio.current_time() - started
        return Slot(tuple(self._held), waited)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._shield:
            with anyio.CancelScope(shield=True):
                await self._release()
        else:
            await self._release()

    async def _try(self) -> tuple[ConcurrencyLimit, str] | None:
        for limit, key in self._wanted:
            if not await self._state.slot_acquire(key, limit.spec.max):
                await self._release()
                return limit, key
            self._held.append(key)
        return None

    async def _release(self) -> None:
        held, self._held = self._held, []
        for key in reversed(held):
            await self._state.slot_release(key)
        if held:
            self._releases.notify()
