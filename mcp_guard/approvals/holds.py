"""Identical held calls sharing one approval request: who holds it, who joins, who is released.

An agent retrying a held call in a loop, or sending it many times in parallel, must not
file one request (and notify every approver) per attempt. A held call identical to one
already held (the same principal, tool, arguments digest and approval spec) joins that
call's pending request instead. One approval releases **one** of the calls holding it:
an approver who approved "delete this repository" once approved one deletion; the other
identical calls are refused. A rejection or an expiry ends all of them.

The registry lives in the process that holds the calls: a pending hold-mode request has a
waiting client only here (a restart abandons them), so nothing else can join it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_guard.approvals.models import ApprovalContext, ApprovalSpec


@dataclass(frozen=True)
class HoldKey:
    """What makes two held calls identical."""

    principal_key: str
    tool: str
    call_digest: str
    spec: ApprovalSpec

    @classmethod
    def of(cls, context: ApprovalContext) -> HoldKey:
        return cls(context.principal.key, context.tool, context.call_digest, context.spec)


@dataclass(eq=False)
class SharedHold:
    """One pending request and the held calls waiting on it.

    ``deadline`` (``anyio.current_time()`` scale, ``None`` for none) is when the hold
    times out, set by the call that filed the request: a call joining later waits no
    longer than that.
    """

    key: HoldKey
    request_id: str
    timeout_s: float | None
    deadline: float | None
    holders: int = 0
    released: bool = False


@dataclass(eq=False)
class HeldCall:
    """One call's place on a shared hold. ``filed``: this call filed the request."""

    hold: SharedHold
    filed: bool
    left: bool = False

    @property
    def request_id(self) -> str:
        return self.hold.request_id


class SharedHolds:
    """The shared holds of one approvals service, by request id and by the call they hold."""

    def __init__(self) -> None:
        self._joinable: dict[HoldKey, SharedHold] = {}
        self._by_id: dict[str, SharedHold] = {}

    def join(self, key: HoldKey) -> HeldCall | None:
        """A place on the pending request of an identical held call, or ``None`` when there is none."""
        hold = self._joinable.get(key)
        if hold is None:
            return None
        hold.holders += 1
        return HeldCall(hold, filed=False)

    def add(self, key: HoldKey, request_id: str, timeout_s: float | None, deadline: float | None) -> HeldCall:
        """The place of the call that filed ``request_id``; identical calls may join it from now on."""
        hold = SharedHold(key, request_id, timeout_s, deadline, holders=1)
        self._joinable[key] = hold
        self._by_id[request_id] = hold
        return HeldCall(hold, filed=True)

    def close(self, request_id: str) -> None:
        """``request_id`` is no longer pending: no call joins it any more."""
        hold = self._by_id.get(request_id)
        if hold is not None:
            self._close(hold)

    def leave(self, call: HeldCall) -> bool:
        """``call`` stops holding; ``True`` when it was the last one (the request is then closed).

        Leaving twice is leaving once.
        """
        if call.left:
            return False
        call.left = True
        hold = call.hold
        hold.holders -= 1
        if hold.holders > 0:
            return False
        self._close(hold)
        self._by_id.pop(hold.request_id, None)
        return True

    def release(self, call: HeldCall) -> bool:
        """Whether ``call`` is the one an approval of its request releases (the first to ask)."""
        if call.hold.released:
            return False
        call.hold.released = True
        return True

    def _close(self, hold: SharedHold) -> None:
        if self._joinable.get(hold.key) is hold:
            del self._joinable[hold.key]
