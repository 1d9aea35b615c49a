"""The session store: sessions by id, bound to one principal, LRU-bounded, idle-expiring.

Two kinds of session live in one store and share its bounds:

- the MCP session (``get(session_id, principal)``): one per connection;
- the workflow session (``workflow(workflow_id, principal)``): calls that carry the same
  agent-supplied workflow id in ``_meta`` (see :func:`workflow_id`), possibly across
  connections. Workflow ids are namespaced by the principal key, so one principal can
  never read or pollute another's workflow by guessing its id.

The clock is injected (a monotonic float source); idle expiry and LRU order use it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from mcp_guard.errors import GuardError
from mcp_guard.principal import Principal
from mcp_guard.sessions.config import SessionConfig
from mcp_guard.sessions.session import Session


class SessionMismatch(GuardError):
    """A session id was presented by a principal other than the one it is bound to."""

    def __init__(self, session_id: str, bound_to: str, presented_by: str) -> None:
        self.session_id = session_id
        self.bound_to = bound_to
        self.presented_by = presented_by
        super().__init__(f"session '{session_id}' is bound to principal '{bound_to}', not '{presented_by}'")


def workflow_id(meta: Mapping[str, Any] | None, config: SessionConfig) -> str | None:
    """The agent-supplied workflow id in a call's ``_meta`` (first configured key with a usable value).

    A usable value is a non-empty string (or an int) no longer than
    ``config.max_workflow_id_length``; anything else is ignored.
    """
    if not meta:
        return None
    for key in config.workflow_meta_keys:
        value = meta.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str) and 0 < len(value) <= config.max_workflow_id_length:
            return value
    return None


class SessionStore:
    """Sessions by key, at most ``config.max_sessions``, forgotten after ``config.idle_ttl_s`` idle.

    Principals' sessions (:meth:`of_principal`) are kept apart, up to ``max_sessions`` of
    their own: a client opening connection after connection evicts MCP and workflow
    sessions, never another principal's record of its calls.

    "Used" means fetched with :meth:`get` or :meth:`workflow`; recording into a session
    object does not refresh it. Not thread-safe: use it from one event loop.
    """

    def __init__(
        self, config: SessionConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or SessionConfig()
        self._clock = clock
        self._sessions: OrderedDict[tuple[str, ...], Session] = OrderedDict()
        self._principals: OrderedDict[tuple[str, ...], Session] = OrderedDict()
        self.evicted = 0
        """Sessions dropped because the store was full (least recently used first)."""
        self.expired = 0
        """Sessions dropped because they were idle longer than ``idle_ttl_s``."""

    def get(self, session_id: str, principal: Principal) -> Session:
        """The session ``session_id``, created for ``principal`` when new (or expired).

        Raises:
            SessionMismatch: the session is bound to a different principal key.
        """
        return self._fetch(("s", session_id), session_id, principal)

    def workflow(self, workflow: str, principal: Principal) -> Session:
        """The workflow session ``workflow`` of ``principal`` (created when new or expired)."""
        return self._fetch(("w", principal.key, workflow), workflow, principal)

    def of_principal(self, principal: Principal) -> Session:
        """Every call of ``principal``, whatever its connection or workflow: what a client
        cannot shed by reconnecting or by naming a fresh workflow id."""
        return self._fetch(("p", principal.key), principal.key, principal, self._principals)

    def for_call(
        self, session_id: str, principal: Principal, meta: Mapping[str, Any] | None = None
    ) -> tuple[Session, Session | None, Session]:
        """The MCP session, the workflow session when ``meta`` names one, and the
        principal's session (:meth:`of_principal`) of a call.

        Raises:
            SessionMismatch: the MCP session is bound to a different principal key.
        """
        session = self.get(session_id, principal)
        wid = workflow_id(meta, self.config)
        workflow = self.workflow(wid, principal) if wid is not None else None
        return session, workflow, self.of_principal(principal)

    def peek(self, session_id: str) -> Session | None:
        """The live session ``session_id`` without creating or refreshing it."""
        session = self._sessions.get(("s", session_id))
        if session is None or self._idle(session, self._clock()):
            return None
        return session

    def drop(self, session_id: str) -> bool:
        """Forget the MCP session ``session_id`` (on disconnect); whether it existed."""
        return self._sessions.pop(("s", session_id), None) is not None

    def expire(self) -> int:
        """Forget every idle session now; returns how many (also done lazily by :meth:`get`)."""
        now = self._clock()
        n = 0
        for table in (self._sessions, self._principals):
            while table:
                key, oldest = next(iter(table.items()))
                if not self._idle(oldest, now):
                    break
                del table[key]
                n += 1
        self.expired += n
        return n

    def __len__(self) -> int:
        return len(self._sessions) + len(self._principals)

    def _idle(self, session: Session, now: float) -> bool:
        return now - session.last_used > self.config.idle_ttl_s

    def _fetch(
        self,
        key: tuple[str, ...],
        session_id: str,
        principal: Principal,
        table: OrderedDict[tuple[str, ...], Session] | None = None,
    ) -> Session:
        table = self._sessions if table is None else table
        now = self._clock()
        session = table.get(key)
        if session is not None and self._idle(session, now):
            del table[key]
            self.expired += 1
            session = None
        if session is None:
            self.expire()
            session = Session(
                session_id,
                principal.key,
                max_calls=self.config.max_calls,
                max_taints=self.config.max_taints,
                clock=self._clock,
            )
            table[key] = session
            while len(table) > self.config.max_sessions:
                table.popitem(last=False)
                self.evicted += 1
            return session
        if session.principal_key != principal.key:
            raise SessionMismatch(session_id, session.principal_key, principal.key)
        session.last_used = now
        table.move_to_end(key)
        return session
