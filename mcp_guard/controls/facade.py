"""The one object the gateway talks to: :class:`Controls`.

The limits stage calls :meth:`Controls.admit` (rate limits, budgets, then breakers); the
approval stage calls :meth:`Controls.recheck_breakers` for a call it held for a human. The
forward runs inside :meth:`Controls.concurrency`, applies :meth:`Controls.timeout_for` and
reports to :meth:`Controls.record_outcome`; a call not forwarded after all goes to
:meth:`Controls.withdraw`. Results pass through :meth:`Controls.bound_result` (readers can
use :meth:`Controls.byte_budget`).
Which controls apply to a call is worked out once and cached (:mod:`mcp_guard.controls.plans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict

from mcp_guard.approvals.models import ApprovalBlock
from mcp_guard.controls.bounds import BoundsOutcome, ByteBudget, bound_result, read_limit
from mcp_guard.controls.breaker import (
    BreakerListener,
    BreakerState,
    BreakerTransition,
    release_probe,
)
from mcp_guard.controls.budgets import CostError
from mcp_guard.controls.clock import Clock, Instant, SystemClock
from mcp_guard.controls.concurrency import Releases, SlotGuard, Wanted
from mcp_guard.controls.config import BoundsSpec, ControlsConfig
from mcp_guard.controls.keys import describe
from mcp_guard.controls.plans import ControlCall, ControlPlans, Resolved
from mcp_guard.controls.state import ChargeNotRecorded, ControlState, MemoryState
from mcp_guard.decision import Decision, Verdict, most_severe

_Taken = tuple[str, float, float, float]
"""What one call took: (key, period or -1 for a bucket, amount, cost or bucket burst)."""


@dataclass(slots=True)
class Admission:
    """What :meth:`Controls.admit` decided for one call, and what it took.

    ``verdict`` is ``None`` or a refusal (one that forwards: WARN, MONITOR_ONLY, or one
    that stops the call, which then holds nothing). ``taken`` (bucket tokens and budget
    charges) is what :meth:`Controls.withdraw` gives back when the call is never
    forwarded after all. ``breakers`` are the breakers that let it through, each with the
    generation it was admitted under: :meth:`Controls.record_outcome` counts the call's
    outcome only against those generations, and :meth:`Controls.withdraw` gives back a
    half-open permit only to the half-open period that granted it.

    A ``verdict`` of APPROVAL_REQUIRED is the one refusal that holds something: the call
    is over a rate limit or budget whose decision asks a human, and it is admitted as far
    as the controls go — charged to every budget (also those it is over), asked of the
    breakers — so that it runs as soon as someone approves it. ``approval`` is the
    ``approval:`` block of the first such control that has one.
    """

    verdict: Verdict | None = None
    taken: list[_Taken] = field(default_factory=list)
    breakers: list[tuple[str, int]] = field(default_factory=list)
    approval: ApprovalBlock | None = None


class BreakerSnapshot(BaseModel):
    """One breaker as operators see it."""

    model_config = ConfigDict(frozen=True)

    breaker: str
    target: str
    state: BreakerState
    consecutive_failures: int
    calls_in_window: int
    failures_in_window: int
    retry_after: float | None


class Controls:
    """Rate limits, budgets, concurrency caps, breakers, timeouts and result bounds.

    ``store`` defaults to a fresh :class:`MemoryState` (use
    :func:`~mcp_guard.controls.sqlite_state.open_embedded_state` for budgets that survive
    restarts); ``clock`` defaults to :class:`SystemClock` and is read only when a method
    is not given ``now``. ``on_breaker_change`` receives every breaker state change; it
    must not raise.
    """

    def __init__(
        self,
        config: ControlsConfig,
        store: ControlState | None = None,
        clock: Clock | None = None,
        *,
        on_breaker_change: BreakerListener | None = None,
    ) -> None:
        self.config = config
        self.state: ControlState = MemoryState() if store is None else store
        self.clock: Clock = SystemClock() if clock is None else clock
        self.on_breaker_change = on_breaker_change
        self._plans = ControlPlans(config)
        self._local = isinstance(self.state, MemoryState)
        self._releases = Releases()
        self._successor: Controls | None = None

    def hand_over(self, successor: Controls) -> None:
        """``successor`` (built from a reloaded config) replaces these controls.

        Calls waiting here for a concurrency slot are woken at once and try again under
        the successor's caps: admitted when a raised or removed cap has room, held to a
        lowered one, refused when its ``wait`` is already spent. Call this when the
        successor takes over, before it takes calls.

        Raises:
            ValueError: the successor keeps its state elsewhere (slots in use would not count).
        """
        if successor is self:
            raise ValueError("controls cannot hand over to themselves")
        if successor.state is not self.state:
            raise ValueError("controls can hand over only to controls on the same control state")
        self._successor = successor
        successor._releases = self._releases
        self._releases.notify()

    # -- limits stage ------------------------------------------------------------------

    async def check(self, call: ControlCall, now: Instant | None = None) -> Verdict | None:
        """Rate limits and budgets for one call; ``None`` when within every limit.

        A call within limits is counted against all of them. A refusal whose decision
        stops the call (BLOCK, APPROVAL_REQUIRED) counts against none; one that lets it
        through (WARN, MONITOR_ONLY) is returned while the call is counted where it fit.
        """
        verdict, _, _ = await self._take(call, now, ask=False)
        return verdict

    async def admit(self, call: ControlCall, now: Instant | None = None) -> Admission:
        """Rate limits, budgets, then breakers: everything the limits stage asks.

        Not ``check(call) or breaker_check(call)``: a WARN or MONITOR_ONLY limit that was
        exceeded must not skip the breakers (an open breaker would be bypassed), and a
        call an open breaker refuses never reaches the upstream, so like any stopping
        refusal it counts against no limit or budget. Hand the admission to
        :meth:`withdraw` if the call is not forwarded after all.

        A call over a rate limit or budget whose decision is APPROVAL_REQUIRED is not
        refused here: see :class:`Admission` (a BLOCK by another control or a breaker
        still refuses it, and no human is asked).
        """
        verdict, taken, approval = await self._take(call, now, ask=True)
        if verdict is not None and verdict.decision is Decision.BLOCK:
            return Admission(verdict)
        broken, probes = await self._ask_breakers(call, None if now is None else now.monotonic)
        if broken is not None:
            await self._undo(taken)
            return Admission(broken)
        return Admission(verdict, taken, probes, approval)

    async def withdraw(self, admission: Admission) -> None:
        """An admitted call that was never forwarded (refused by a later stage or cap, or
        cancelled while it waited): its budget charges and half-open probe permits go back.

        Rate-limit tokens stay spent: a rate limit throttles attempts, and a call refused
        later (one that asked for an approval, say) was an attempt. Budgets count what
        reached the upstream, so a deferred approval's retry is charged once, not twice.
        """
        charges, admission.taken = [t for t in admission.taken if t[1] >= 0], []
        await self._undo(charges)
        await self.release_probes(admission)

    async def recheck_breakers(
        self, call: ControlCall, admission: Admission, now: float | None = None
    ) -> Verdict | None:
        """Ask the breakers again for an admitted call that waited before being forwarded
        (held for an approval): ``None`` when they let it through now, else the refusal an
        open breaker gives any call.

        The half-open permits the call still holds go back first; it is then admitted under
        each breaker's state now, taking a permit of a half-open one (recorded in
        ``admission``, so its outcome counts) — or, refused, holds none. Its rate-limit
        tokens and budget charges stay as they are: :meth:`withdraw` gives the charges back
        if the call is not forwarded after all.
        """
        await self.release_probes(admission)
        verdict, admission.breakers = await self._ask_breakers(call, now)
        return verdict

    async def release_probes(self, admission: Admission) -> None:
        """Give back the half-open permits of a call whose outcome will never be reported
        (cancelled), so the next probe need not wait ``open_for`` for the lost one."""
        admitted, admission.breakers = admission.breakers, []
        for key, generation in admitted:
            rec = await self.state.breaker_get(key)
            if release_probe(rec, generation) and not self._local:
                await self.state.breaker_put(key, rec)

    async def _take(
        self, call: ControlCall, now: Instant | None, *, ask: bool
    ) -> tuple[Verdict | None, list[_Taken], ApprovalBlock | None]:
        """:meth:`check`, also returning what was taken so a later refusal can give it back.

        With ``ask``, a call over controls whose decision is APPROVAL_REQUIRED (and under
        every other) is returned with their verdict, charged to its budgets, taking no
        token from the buckets it is over, with the first of their ``approval:`` blocks;
        without, such a refusal stops it like a BLOCK.
        Cancelled part-way (a state that writes through suspends), it gives back what it took.
        """
        resolved = self._plans.for_call(call)
        if not resolved.limits and not resolved.budgets:
            return None, [], None
        taken: list[_Taken] = []
        try:
            return await self._take_from(call, self.clock.now() if now is None else now, resolved, taken, ask)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._undo(taken)
            raise

    async def _take_from(
        self, call: ControlCall, now: Instant, resolved: Resolved, taken: list[_Taken], ask: bool
    ) -> tuple[Verdict | None, list[_Taken], ApprovalBlock | None]:
        state = self.state
        soft: Verdict | None = None
        asking: list[tuple[Verdict, ApprovalBlock | None]] = []
        for limit, keys in resolved.limits:
            for key in keys:
                wait = await state.bucket_take(key, limit.rate, limit.burst, 1.0, now.monotonic)
                if wait:
                    verdict = limit.refusal(describe(key), wait)
                    if ask and verdict.decision is Decision.APPROVAL_REQUIRED:
                        asking.append((verdict, limit.spec.approval))  # takes no token: none is left
                        continue
                    if not verdict.decision.forwards:
                        await self._undo(taken)
                        return verdict, [], None
                    soft = _worse(soft, verdict)
                else:
                    taken.append((key, -1.0, 1.0, limit.burst))
        for budget, keys in resolved.budgets:
            spec = budget.spec
            try:
                cost = budget.cost_of(call.tool, call.arguments, call.cost)
            except CostError as exc:
                await self._undo(taken)
                return budget.cost_refusal(str(exc)), [], None
            start, end, end_iso = budget.window.at(now.wall)
            try:
                for key in keys:
                    added, usage = await state.counter_add(
                        key,
                        start,
                        end=end,
                        calls=1,
                        cost=cost,
                        max_calls=spec.max_calls,
                        max_cost=spec.max_cost,
                    )
                    if added:
                        taken.append((key, start, 1.0, cost))
                        continue
                    if budget.never_fits(cost):
                        verdict = budget.never_fits_refusal(describe(key), cost)
                    else:
                        verdict = budget.refusal(
                            describe(key),
                            calls=usage.calls,
                            cost=usage.cost,
                            this_cost=cost,
                            reset_iso=end_iso,
                            retry_after=end - now.wall.timestamp(),
                        )
                    if ask and verdict.decision is Decision.APPROVAL_REQUIRED:
                        # an approved call runs, so its spend is real: charged over the maximum
                        await state.counter_add(
                            key, start, end=end, calls=1, cost=cost, max_calls=None, max_cost=None
                        )
                        taken.append((key, start, 1.0, cost))
                        asking.append((verdict, spec.approval))
                        continue
                    if not verdict.decision.forwards:
                        await self._undo(taken)
                        return verdict, [], None
                    soft = _worse(soft, verdict)
            except ChargeNotRecorded as exc:  # fail closed, whatever the configured decision
                await self._undo(taken)
                return budget.unrecorded_refusal(describe(key), str(exc)), [], None
        if asking:
            return approval_needed([v for v, _ in asking]), taken, next((b for _, b in asking if b), None)
        return soft, taken, None

    async def _undo(self, taken: list[_Taken]) -> None:
        """Give back everything in ``taken``, emptying it as it goes (so nothing twice)."""
        while taken:
            key, period, amount, extra = taken.pop()
            if period < 0:
                await self.state.bucket_give_back(key, extra, amount)
            else:
                await self.state.counter_sub(key, period, int(amount), extra)

    def concurrency(self, call: ControlCall) -> SlotGuard:
        """``async with controls.concurrency(call) as slot:`` — hold a slot under every cap.

        Raises (on enter):
            ConcurrencyRefused: a cap is full (after waiting, if the cap allows waiting).
        """
        return SlotGuard(self.state, self._releases, self._plans.for_call(call).concurrency, self, call)

    def caps_in_force(self, call: ControlCall) -> Wanted:
        """The concurrency caps for ``call`` under the controls now in force (see :meth:`hand_over`)."""
        current = self
        while current._successor is not None:
            current = current._successor
        return current._plans.for_call(call).concurrency

    # -- forward stage -------------------------------------------------------------------

    async def breaker_check(self, call: ControlCall, now: float | None = None) -> Verdict | None:
        """``None`` when every breaker on the call's upstream and tool lets it through.

        A half-open breaker admits up to ``half_open_probes`` calls; report each admitted
        call's outcome with :meth:`record_outcome`.
        """
        verdict, _ = await self._ask_breakers(call, now)
        return verdict

    async def _ask_breakers(
        self, call: ControlCall, now: float | None
    ) -> tuple[Verdict | None, list[tuple[str, int]]]:
        """:meth:`breaker_check`, also returning the breakers that admitted the call, each
        with the generation it was admitted under (a half-open one's permit is held).

        When a later breaker refuses, the permits the earlier ones gave are released: the
        refused call will never report the outcome that would free them.
        """
        plan = self._plans.for_tool(call.upstream, call.tool)
        if not plan.breakers:
            return None, []
        mono = self.clock.monotonic() if now is None else now
        admitted: list[tuple[str, int]] = []
        for breaker, key, target in plan.breakers:
            rec = await self.state.breaker_get(key)
            wait, change = breaker.admit(rec, target, mono)
            if not self._local and (change is not None or wait is None):
                await self.state.breaker_put(key, rec)
            if change is not None:
                self._emit(change)
            if wait is not None:
                await self.release_probes(Admission(breakers=admitted))
                return breaker.refusal(target, wait), []
            admitted.append((key, rec.generation))
        return None, admitted

    async def record_outcome(
        self,
        call: ControlCall,
        failed: bool,
        now: float | None = None,
        *,
        tool_error: bool = False,
        admission: Admission | None = None,
    ) -> None:
        """Report how a forwarded call ended.

        ``failed``: a transport error or timeout. ``tool_error``: the result had
        ``isError`` — a failure only for breakers with ``count_tool_errors: true``.
        ``admission``: what :meth:`admit` returned for the call. The outcome then counts
        only against the breaker generations that admitted it, and only once; without it
        the outcome is taken to belong to each breaker's current generation, which is
        right only when no other call was admitted since (the gateway always passes it).
        """
        plan = self._plans.for_tool(call.upstream, call.tool)
        if not plan.breakers:
            return
        generations: dict[str, int] | None = None
        if admission is not None:
            generations, admission.breakers = dict(admission.breakers), []
        mono = self.clock.monotonic() if now is None else now
        for breaker, key, target in plan.breakers:
            generation = None
            if generations is not None:
                generation = generations.get(key)
                if generation is None:  # a breaker added by a reload since: it never admitted the call
                    continue
            rec = await self.state.breaker_get(key)
            change = breaker.record(
                rec, target, failed or (tool_error and breaker.spec.count_tool_errors), mono, generation
            )
            if not self._local:
                await self.state.breaker_put(key, rec)
            if change is not None:
                self._emit(change)

    def timeout_for(self, upstream: str, tool: str) -> float:
        """Seconds a forwarded call may take: the most specific matching ``timeouts`` item."""
        return self._plans.for_tool(upstream, tool).timeout

    def bounds_for(self, upstream: str, tool: str) -> BoundsSpec | None:
        """The most specific matching ``result_bounds`` item, if any."""
        return self._plans.for_tool(upstream, tool).bounds

    def byte_budget(self, upstream: str, tool: str) -> ByteBudget:
        """A fresh hard cap for reading one result of this tool (see :func:`read_limit`)."""
        return ByteBudget(read_limit(self._plans.for_tool(upstream, tool).bounds))

    def bound_result(self, upstream: str, tool: str, result: CallToolResult) -> BoundsOutcome:
        """Apply the tool's result bounds (unchanged when none match)."""
        spec = self._plans.for_tool(upstream, tool).bounds
        return BoundsOutcome(result) if spec is None else bound_result(result, spec)

    # -- operators -------------------------------------------------------------------------

    async def snapshot(self, now: float | None = None) -> list[BreakerSnapshot]:
        """Every breaker that has seen a call, with its state and time to the next probe."""
        mono = self.clock.monotonic() if now is None else now
        by_id = {b.spec.id: b for b in self._plans.breakers}
        out = []
        for key, rec in await self.state.breaker_items():
            ident, _, target = key.partition("|")
            breaker = by_id.get(ident)
            if breaker is None:
                continue
            calls, failures = breaker.error_rate(rec, mono)
            retry = None
            if rec.state is BreakerState.OPEN:
                retry = max(rec.opened_at + breaker.spec.open_for - mono, 0.0)
            out.append(
                BreakerSnapshot(
                    breaker=ident,
                    target=target,
                    state=rec.state,
                    consecutive_failures=rec.consecutive,
                    calls_in_window=calls,
                    failures_in_window=failures,
                    retry_after=retry,
                )
            )
        return out

    # -- internals -------------------------------------------------------------------------

    def _emit(self, change: BreakerTransition) -> None:
        if self.on_breaker_change is not None:
            self.on_breaker_change(change)


def approval_needed(over: Sequence[Verdict]) -> Verdict:
    """One APPROVAL_REQUIRED verdict for a call over the controls that refused it with ``over``.

    No ``retry_after``: the call goes through when a human approves it, not when the
    limit resets (the reasons still say when that is, for the approver).
    """
    rules = tuple(dict.fromkeys(rule for v in over for rule in v.rules))
    details = {k: v for k, v in over[0].details.items() if k != "retry_after"}
    return Verdict(
        decision=Decision.APPROVAL_REQUIRED,
        rules=rules,
        reason=" ".join(dict.fromkeys(v.reason for v in over)),
        details=details,
    )


def _worse(a: Verdict | None, b: Verdict) -> Verdict:
    return b if a is None or most_severe(a.decision, b.decision) is not a.decision else a
