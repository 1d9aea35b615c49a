"""The approval service the gateway pipeline calls: create, wait (hold), consume (defer), decide.

It owns its tasks (notifier deliveries with retries, the expiry sweeper) for the
lifetime of :meth:`ApprovalService.open`.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import anyio
import httpx2
from anyio.abc import TaskGroup
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_guard.approvals.config import ApprovalConfig
from mcp_guard.approvals.decide import is_overdue, record_decision
from mcp_guard.approvals.decisions import verify_decision
from mcp_guard.approvals.delivery import OnDelivery, Sleep, deliver
from mcp_guard.approvals.errors import ApprovalError, ApprovalHoldFailedError, ApprovalNotFoundError
from mcp_guard.approvals.events import audited
from mcp_guard.approvals.holds import HeldCall, HoldKey, SharedHolds
from mcp_guard.approvals.models import (
    ApprovalContext,
    ApprovalRequest,
    ApprovalSpec,
    ApprovalState,
    DeliveryStatus,
)
from mcp_guard.approvals.notifiers import Notifier, build_notifiers
from mcp_guard.approvals.store import ApprovalStore, ApprovalStoreError
from mcp_guard.approvals.wakeups import Wakeups
from mcp_guard.audit.models import AuditError
from mcp_guard.audit.protocol import AuditLog
from mcp_guard.principal import Principal
from mcp_guard.signing import key_id, load_or_create_signing_key, public_key_pem

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
OnTick = Callable[[float], Awaitable[None]]
"""Called with the seconds waited so far, every ``progress_interval_s`` while a hold waits."""
LIST_LIMIT = 500
"""At most this many requests in one listing (the admin API, newest first)."""
LIST_PAGE = 500
LIST_SCAN_LIMIT = 100_000
"""A listing reads at most this many of the newest requests looking for visible ones."""
UNAVAILABLE = (AuditError, ApprovalStoreError, sqlite3.Error)
"""What the approvals database or the audit log raise when they cannot serve a request."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ApprovalService:
    """Human-in-the-loop approvals over one SQLite file. Build it with :meth:`open`."""

    def __init__(
        self,
        *,
        config: ApprovalConfig,
        audit: AuditLog | None,
        store: ApprovalStore,
        key: Ed25519PrivateKey,
        clock: Clock,
        sleep: Sleep,
        client: httpx2.AsyncClient,
        notifiers: dict[str, Notifier],
        on_delivery: OnDelivery | None,
        tasks: TaskGroup,
    ) -> None:
        self.config = config
        self._audit = audit
        self._store = store
        self._key = key
        self._clock = clock
        self._sleep = sleep
        self._client = client
        self._notifiers = notifiers
        self._on_delivery = on_delivery
        self._tasks = tasks
        self._wakeups = Wakeups()
        self._holds = SharedHolds()
        self._filing = anyio.Lock()
        """Held calls file or join one at a time, so identical parallel calls file one request."""
        self._stranded: dict[str, str] = {}
        """Held requests whose hold failed and that could not be abandoned yet: id -> reason."""

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config: ApprovalConfig,
        audit: AuditLog | None = None,
        *,
        clock: Clock = _utc_now,
        sleep: Sleep = anyio.sleep,
        http_client: httpx2.AsyncClient | None = None,
        notifiers: Sequence[Notifier] | None = None,
        on_delivery: OnDelivery | None = None,
    ) -> AsyncIterator[ApprovalService]:
        """Open the database, recover after a restart, and run the sweeper and deliveries until exit.

        On open: hold-mode requests left pending by a previous process are abandoned
        (their waiting client is gone), overdue requests expire, and unfinished
        deliveries resume. ``clock`` gives wall time (expiry); ``sleep`` is used
        between delivery retries; ``notifiers`` replaces the ones built from
        ``config.channels``; ``on_delivery`` observes each persisted delivery outcome.

        Raises:
            mcp_guard.signing.SigningKeyError: the signing key cannot be loaded or created.
            ApprovalStoreError: the database cannot be opened.
            mcp_guard.audit.AuditUnavailableError: a recovery entry could not be audited.
        """
        key = await anyio.to_thread.run_sync(load_or_create_signing_key, config.signing_key_path)
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(
                ApprovalStore.open(config.path, busy_timeout_ms=config.busy_timeout_ms)
            )
            client = http_client
            if client is None:
                client = await stack.enter_async_context(httpx2.AsyncClient(timeout=config.http_timeout_s))
            built = (
                {n.name: n for n in notifiers} if notifiers is not None else build_notifiers(config, clock)
            )
            async with anyio.create_task_group() as tg:
                service = cls(
                    config=config,
                    audit=audit,
                    store=store,
                    key=key,
                    clock=clock,
                    sleep=sleep,
                    client=client,
                    notifiers=built,
                    on_delivery=on_delivery,
                    tasks=tg,
                )
                await service._recover()
                tg.start_soon(service._sweep_forever)
                try:
                    yield service
                finally:
                    tg.cancel_scope.cancel()

    @property
    def public_key_pem(self) -> str:
        """The PEM public key that verifies this gateway's decisions."""
        return public_key_pem(self._key)

    @property
    def key_id(self) -> str:
        return key_id(self._key)

    @property
    def holding(self) -> int:
        """How many requests a call is being held on right now (each has one wake-up entry)."""
        return len(self._wakeups)

    def verify(self, request: ApprovalRequest) -> bool:
        """Whether ``request``'s decision is validly signed by this gateway's key."""
        return verify_decision(request, self._key)

    async def create(self, context: ApprovalContext) -> ApprovalRequest:
        """Persist a new pending request, audit it, then schedule its notifications.

        Raises:
            TooManyPendingError: the principal already has ``config.max_pending_per_principal``
                requests pending; nothing was stored, audited or notified.
            mcp_guard.audit.AuditUnavailableError: the creation could not be audited, so
                nothing was stored or notified (the caller should fail closed).
        """
        now = self._clock()
        request = ApprovalRequest(
            id=uuid4().hex,
            state=ApprovalState.PENDING,
            created_at=now,
            expires_at=now + timedelta(seconds=context.spec.ttl_s),
            context=context,
        )
        channels = self._channels_for(context.spec)
        await self._store.insert(
            request,
            channels,
            before_commit=audited(self._audit, "created"),
            max_pending=self.config.max_pending_per_principal,
        )
        for name in channels:
            self._start_delivery(name, request.id, 0)
        return request

    @asynccontextmanager
    async def hold(self, context: ApprovalContext, timeout_s: float | None = None) -> AsyncIterator[HeldCall]:
        """Hold-mode: file a request for this call, or join the pending request of an
        identical call already held (same principal, tool, arguments digest and spec).

        Wait on the yielded place with :meth:`wait_held`. A joining call files and
        notifies nothing, and times out with the call that filed the request
        (``timeout_s`` is that call's). A call leaving without an outcome abandons the
        request only when no identical call still holds it.

        Raises:
            TooManyPendingError, mcp_guard.audit.AuditUnavailableError: as :meth:`create`.
        """
        key = HoldKey.of(context)
        async with self._filing:
            held = self._holds.join(key)
            if held is None:
                request = await self.create(context)
                deadline = None if timeout_s is None else anyio.current_time() + timeout_s
                held = self._holds.add(key, request.id, timeout_s, deadline)
        try:
            yield held
        finally:
            self._holds.leave(held)

    async def wait_held(self, held: HeldCall, on_tick: OnTick | None = None) -> ApprovalRequest:
        """:meth:`wait` for a call's place on a shared hold, until the hold's own deadline.

        Raises:
            ApprovalNotFoundError: no such request.
            ApprovalHoldFailedError: the hold failed; the call must not be forwarded.
        """
        hold = held.hold
        return await self._wait(
            hold.request_id, hold.timeout_s, hold.deadline, on_tick, lambda: self._holds.leave(held)
        )

    def release(self, held: HeldCall) -> bool:
        """Whether the approval of ``held``'s request forwards this call: only the first of the
        identical calls holding it asks and gets ``True`` (an approval is used once)."""
        return self._holds.release(held)

    async def consume(self, principal: Principal, tool: str, digest: str) -> str | None:
        """Use an approved, unexpired, unused deferred approval of exactly this call, once.

        Returns its id, or ``None`` when there is none. An approval whose decision does
        not verify with this gateway's key (written into the database by something
        other than this service or the CLI) is used up but releases nothing.

        Raises:
            mcp_guard.audit.AuditUnavailableError: the use could not be audited (the
                approval stays unused).
        """
        used = await self._store.consume(
            principal.key, tool, digest, self._clock(), before_commit=audited(self._audit, "used")
        )
        if used is None:
            return None
        if not self.verify(used):
            logger.error(
                "approval %s is approved but its decision does not verify with the approvals key "
                "(key id %s); the call is not released",
                used.id,
                self.key_id,
            )
            return None
        return used.id

    async def pending_deferral(self, principal: Principal, tool: str, digest: str) -> ApprovalRequest | None:
        """The request still waiting for a decision on exactly this deferred call, if any.

        An agent retrying a deferred call before anyone decided should point at the same
        request, not file a new one (and notify every approver again) on each retry.
        """
        return await self._store.pending_deferral(principal.key, tool, digest, self._clock())

    async def get(self, request_id: str) -> ApprovalRequest | None:
        """The request (expired first if overdue, abandoned first if its hold failed), or
        ``None`` when there is no such id.

        Raises:
            ApprovalStoreError, sqlite3.Error, mcp_guard.audit.AuditError: the database
                cannot be read, or an expiry or abandonment due now cannot be stored or
                audited (then nothing changed).
        """
        await self._settle(request_id)
        request = await self._store.get(request_id)
        if request is not None and is_overdue(request, self._clock()):
            request = await self._expire(request, "time to live ran out") or await self._store.get(request_id)
        return request

    async def list(
        self,
        state: ApprovalState | None = None,
        visible: Callable[[ApprovalRequest], bool] | None = None,
        *,
        limit: int = LIST_LIMIT,
    ) -> builtins.list[ApprovalRequest]:
        """The newest ``limit`` requests (overdue ones expired first), optionally only those
        in ``state`` and those ``visible`` says a caller may see.

        Visibility is applied while reading, page by page, so that other principals'
        newer requests cannot push a caller's own out of its list.
        """
        await self.sweep()
        found: builtins.list[ApprovalRequest] = []
        for offset in range(0, LIST_SCAN_LIMIT, LIST_PAGE):
            page = await self._store.list_requests(state, limit=LIST_PAGE, offset=offset)
            found += [r for r in page if visible is None or visible(r)]
            if len(found) >= limit or len(page) < LIST_PAGE:
                break
        return found[:limit]

    async def deliveries(self, request_id: str) -> builtins.list[DeliveryStatus]:
        """The notification delivery state of each channel of ``request_id``."""
        return await self._store.deliveries(request_id)

    async def decide(
        self, request_id: str, approver: Principal, approve: bool, reason: str, *, via: str = "api"
    ) -> ApprovalRequest:
        """Approve or reject as ``approver``; the decision is signed, stored and audited.

        Raises:
            ApprovalNotFoundError, ApprovalExpiredError, ApprovalNotPendingError,
            NotAnApproverError, SelfApprovalError: see :mod:`mcp_guard.approvals.errors`.
            mcp_guard.audit.AuditUnavailableError: not audited, so not stored (still pending).
        """
        return await self._decide(request_id, approver, approve, reason, via, self_confirmation=False)

    async def self_confirm(self, request_id: str, principal: Principal, accepted: bool) -> ApprovalRequest:
        """Record the requester's own answer to an MCP elicitation ("run this call?").

        Only for requests whose rule sets ``allow_self``; the answer is signed like
        any decision, with ``via="elicitation"``.

        Raises:
            SelfApprovalError: the rule does not allow self-confirmation.
            NotAnApproverError: ``principal`` is not the requester.
            ApprovalNotFoundError, ApprovalExpiredError, ApprovalNotPendingError: as :meth:`decide`.
        """
        reason = "confirmed by the requester" if accepted else "declined by the requester"
        return await self._decide(
            request_id, principal, accepted, reason, "elicitation", self_confirmation=True
        )

    async def wait(
        self, request_id: str, timeout_s: float | None = None, on_tick: OnTick | None = None
    ) -> ApprovalRequest:
        """Hold until the request is decided or expires; return it in its final state.

        Calls ``on_tick(seconds_waited)`` every ``config.progress_interval_s``. When
        ``timeout_s`` passes first, the request expires (nobody will act on a hold
        whose caller gave up). If the waiter is cancelled (the client went away),
        a still-pending request becomes ``abandoned`` and the cancellation propagates.
        If the hold fails (the approvals database or the audit log raises, or
        ``on_tick`` does), a still-pending request becomes ``abandoned`` with the cause
        as its reason and :class:`ApprovalHoldFailedError` is raised. When the database
        or the audit log cannot record that abandonment at once, every sweep retries it
        and no decision on the request is accepted meanwhile. Decisions made in another
        process (the CLI) are seen within ``config.poll_interval_s``.

        Raises:
            ApprovalNotFoundError: no such request.
            ApprovalHoldFailedError: the hold failed; the call must not be forwarded.
        """
        deadline = None if timeout_s is None else anyio.current_time() + timeout_s
        return await self._wait(request_id, timeout_s, deadline, on_tick, lambda: True)

    async def _wait(
        self,
        request_id: str,
        timeout_s: float | None,
        deadline: float | None,
        on_tick: OnTick | None,
        last_out: Callable[[], bool],
    ) -> ApprovalRequest:
        """:meth:`wait` until ``deadline``; ``last_out`` says, as a waiter leaves without an
        outcome, whether nobody else holds the request (then it is abandoned)."""
        try:
            with self._wakeups.watching(request_id) as next_change:
                return await self._hold(request_id, timeout_s, deadline, on_tick, next_change)
        except anyio.get_cancelled_exc_class():
            if last_out():
                with anyio.CancelScope(shield=True):
                    await self._give_up(request_id, "the waiting client went away")
            raise
        except ApprovalError:
            raise
        except Exception as exc:  # boundary: whatever failed, the call is refused, the request abandoned
            cause = f"{type(exc).__name__}: {exc}"
            logger.exception("approval %s: holding the call failed (%s)", request_id, cause)
            last = last_out()
            if last:
                await self._give_up(request_id, f"holding the call failed ({cause})")
            raise ApprovalHoldFailedError(request_id, cause, abandoned=last) from exc

    async def sweep(self) -> builtins.list[ApprovalRequest]:
        """Abandon the requests of failed holds (those it can), then expire every overdue
        request now; return those expired.

        Raises:
            ApprovalStoreError, sqlite3.Error, mcp_guard.audit.AuditError: an expiry could
                not be stored or audited (it did not happen; the next sweep retries it).
        """
        for request_id in builtins.list(self._stranded):
            try:
                await self._settle(request_id)
            except UNAVAILABLE as exc:
                logger.error(
                    "approval %s: still cannot abandon it (%s); retrying at the next sweep", request_id, exc
                )
        expired: builtins.list[ApprovalRequest] = []
        for request in await self._store.overdue(self._clock()):
            done = await self._expire(request, "time to live ran out")
            if done is not None:
                expired.append(done)
        return expired

    async def _decide(
        self,
        request_id: str,
        approver: Principal,
        approve: bool,
        reason: str,
        via: str,
        *,
        self_confirmation: bool,
    ) -> ApprovalRequest:
        await self.get(request_id)  # expires it (with its audit entry) when overdue
        decided = await record_decision(
            self._store,
            self._key,
            self._audit,
            request_id=request_id,
            approver=approver,
            approve=approve,
            reason=reason,
            now=self._clock(),
            via=via,
            default_approvers=self.config.default_approvers,
            self_confirmation=self_confirmation,
        )
        self._changed(request_id)
        return decided

    async def _hold(
        self,
        request_id: str,
        timeout_s: float | None,
        deadline: float | None,
        on_tick: OnTick | None,
        next_change: Callable[[], anyio.Event],
    ) -> ApprovalRequest:
        start = anyio.current_time()
        tick = self.config.progress_interval_s
        next_tick = start + tick
        while True:
            changed = next_change()
            request = await self.get(request_id)
            if request is None:
                raise ApprovalNotFoundError(request_id)
            if request.state is not ApprovalState.PENDING:
                self._holds.close(request_id)  # decided in another process (the CLI)
                return request
            now = anyio.current_time()
            if deadline is not None and now >= deadline:
                expired = await self._expire(
                    request, f"nobody decided within the hold timeout ({timeout_s}s)"
                )
                return expired or await self._must_get(request_id)
            if on_tick is not None and now >= next_tick:
                await on_tick(now - start)
                next_tick += tick * max(1, int((now - next_tick) // tick) + 1)
            ttl_left = (request.expires_at - self._clock()).total_seconds()
            step = min(self.config.poll_interval_s, next_tick - now, max(ttl_left, 0.0))
            if deadline is not None:
                step = min(step, deadline - now)
            with anyio.move_on_after(max(step, 0.0)):
                await changed.wait()

    async def _must_get(self, request_id: str) -> ApprovalRequest:
        request = await self._store.get(request_id)
        if request is None:
            raise ApprovalNotFoundError(request_id)
        return request

    async def _expire(self, request: ApprovalRequest, reason: str) -> ApprovalRequest | None:
        if request.state is ApprovalState.APPROVED:
            reason = "the approval was not used within its validity"
        done = await self._store.close_request(
            request.id,
            (ApprovalState.PENDING, ApprovalState.APPROVED),
            ApprovalState.EXPIRED,
            self._clock(),
            reason,
            before_commit=audited(self._audit, "expired", reason),
        )
        if done is not None:
            self._changed(request.id)
        return done

    async def _abandon(self, request_id: str, reason: str) -> None:
        done = await self._store.close_request(
            request_id,
            (ApprovalState.PENDING,),
            ApprovalState.ABANDONED,
            self._clock(),
            reason,
            before_commit=audited(self._audit, "abandoned", reason),
        )
        if done is not None:
            self._changed(request_id)

    def _changed(self, request_id: str) -> None:
        """``request_id`` left ``pending``: wake its waiters; no identical call joins it any more."""
        self._holds.close(request_id)
        self._wakeups.wake(request_id)

    async def _give_up(self, request_id: str, reason: str) -> None:
        """Abandon a request whose hold ended without an outcome; when the database or the
        audit log cannot record that now, keep it stranded for :meth:`sweep` to retry."""
        self._stranded[request_id] = reason
        try:
            await self._settle(request_id)
        except UNAVAILABLE as exc:
            logger.error(
                "approval %s: cannot abandon it yet (%s); no decision on it is accepted until the "
                "sweeper does",
                request_id,
                exc,
            )

    async def _settle(self, request_id: str) -> None:
        """Abandon ``request_id`` if a failed hold left it stranded (raises when it still cannot)."""
        reason = self._stranded.get(request_id)
        if reason is not None:
            await self._abandon(request_id, reason)
            self._stranded.pop(request_id, None)

    def _channels_for(self, spec: ApprovalSpec) -> builtins.list[str]:
        if spec.channels is None:
            return list(self._notifiers)
        unknown = [n for n in spec.channels if n not in self._notifiers]
        if unknown:
            logger.warning(
                "approval channels %s are not configured; known: %s", unknown, list(self._notifiers)
            )
        return [n for n in spec.channels if n in self._notifiers]

    def _start_delivery(self, channel: str, request_id: str, attempts: int) -> None:
        notifier = self._notifiers.get(channel)
        if notifier is None:
            logger.warning(
                "approval %s: channel %r is no longer configured; not delivered", request_id, channel
            )
            return
        self._tasks.start_soon(self._deliver, notifier, request_id, attempts)

    async def _deliver(self, notifier: Notifier, request_id: str, attempts: int) -> None:
        await deliver(
            notifier,
            request_id,
            store=self._store,
            client=self._client,
            policy=self.config.retry,
            clock=self._clock,
            sleep=self._sleep,
            attempts=attempts,
            on_delivery=self._on_delivery,
        )

    async def _recover(self) -> None:
        for request in await self._store.pending("hold"):
            await self._abandon(request.id, "the gateway restarted while the call was held")
        await self.sweep()
        for d in await self._store.undelivered():
            self._start_delivery(d.channel, d.request_id, d.attempts)

    async def _sweep_forever(self) -> None:
        while True:
            await anyio.sleep(self.config.sweep_interval_s)
            try:
                await self.sweep()
            except UNAVAILABLE as exc:
                logger.error(
                    "approval expiry sweep failed (retrying in %ss): %s", self.config.sweep_interval_s, exc
                )
