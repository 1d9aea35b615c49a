"""The session store: sessions by id, bound to one principal, bounded, idle-expiring.

Two kinds of session share one table, bounded overall and per principal (so that one
principal's sessions never crowd out another's):

- the MCP session (``get(session_id, principal)``): one per connection;
- the workflow session (``workflow(workflow_id, principal)``): calls that carry the same
  agent-supplied workflow id in ``_meta`` (see :func:`workflow_id`), possibly across
  connections. Workflow ids are namespaced by the principal key, so one principal can
  never read or pollute another's workflow by guessing its id.

Each principal's own session (``of_principal``) lives in a table of its own.

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


Key = tuple[str, ...]


class SessionStore:
    """Sessions by key, forgotten after ``config.idle_ttl_s`` idle, bounded per principal and overall.

    MCP and workflow sessions share one table of at most ``max_sessions``, and each
    principal holds at most ``max_sessions_per_principal`` of them. Past either bound a
    session is evicted, least recently used first, from the principal over its own bound,
    else from the principal holding the most (the oldest such session when several tie):
    a client opening session after session, or naming a fresh workflow id for each call,
    evicts its own sessions, never those of a principal holding fewer, whose history
    (the policy ``history`` conditions, taint) would otherwise be erased.

    Principals' sessions (:meth:`of_principal`) are kept apart, up to ``max_sessions``
    principals, least recently used evicted: no flood of connections reaches them.

    "Used" means fetched with :meth:`get` or :meth:`workflow`; recording into a session
    object does not refresh it. Not thread-safe: use it from one event loop.
    """

    def __init__(
        self, config: SessionConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or SessionConfig()
        self._clock = clock
        self._sessions: OrderedDict[Key, Session] = OrderedDict()
        self._held: dict[str, OrderedDict[Key, None]] = {}
        """Each principal's keys in ``_sessions``, least recently used first."""
        self._principals: OrderedDict[Key, Session] = OrderedDict()
        self.evicted = 0
        """Sessions dropped because a bound was reached (least recently used first)."""
        self.expired = 0
        """Sessions dropped because they were idle longer than ``idle_ttl_s``."""

    def now(self) -> float:
        """The store's monotonic time, which its sessions stamp records with (``mono``)."""
        return self._clock()

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
        key = ("p", principal.key)
        table = self._principals
        now = self._clock()
        session = table.get(key)
        if session is not None and self._idle(session, now):
            del table[key]
            self.expired += 1
            session = None
        if session is None:
            self.expire()
            session = table[key] = self._new(principal.key, principal)
            while len(table) > self.config.max_sessions:
                table.popitem(last=False)
                self.evicted += 1
            return session
        session.last_used = now
        table.move_to_end(key)
        return session

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

    def held_by(self, principal: Principal) -> int:
        """How many MCP and workflow sessions ``principal`` holds now."""
        return len(self._held.get(principal.key, ()))

    def drop(self, session_id: str) -> bool:
        """Forget the MCP session ``session_id`` (on disconnect); whether it existed."""
        return self._forget(("s", session_id)) is not None

    def expire(self) -> int:
        """Forget every idle session now; returns how many (also done lazily by :meth:`get`)."""
        now = self._clock()
        n = 0
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if not self._idle(oldest, now):
                break
            self._forget(key)
            n += 1
        while self._principals:
            key, oldest = next(iter(self._principals.items()))
            if not self._idle(oldest, now):
                break
            del self._principals[key]
            n += 1
        self.expired += n
        return n

    def __len__(self) -> int:
        return len(self._sessions) + len(self._principals)

    def _idle(self, session: Session, now: float) -> bool:
        return now - session.last_used > self.config.idle_ttl_s

    def _new(self, session_id: str, principal: Principal) -> Session:
        return Session(
            session_id,
            principal.key,
            max_calls=self.config.max_calls,
            max_taints=self.config.max_taints,
            clock=self._clock,
        )

    def _fetch(self, key: Key, session_id: str, principal: Principal) -> Session:
        now = self._clock()
        session = self._sessions.get(key)
        if session is not None and self._idle(session, now):
            self._forget(key)
            self.expired += 1
            session = None
        if session is None:
            self.expire()
            session = self._sessions[key] = self._new(session_id, principal)
            self._held.setdefault(principal.key, OrderedDict())[key] = None
            self._bound(principal.key)
            return session
        if session.principal_key != principal.key:
            raise SessionMismatch(session_id, session.principal_key, principal.key)
        session.last_used = now
        self._sessions.move_to_end(key)
        self._held[principal.key].move_to_end(key)
        return session

    def _bound(self, principal_key: str) -> None:
        """Evict until ``principal_key`` and the whole table are within their bounds."""
        own = self._held[principal_key]
        while len(own) > self.config.max_sessions_per_principal:
            self._evict(next(iter(own)))
        while len(self._sessions) > self.config.max_sessions:
            self._evict(self._most_held_oldest())

    def _most_held_oldest(self) -> Key:
        """The least recently used session of the principal holding the most sessions
        (of the one whose such session is oldest, when several hold as many). Looks at
        every principal holding sessions, which happens only while the table is full."""
        most = max(len(keys) for keys in self._held.values())
        oldest = (next(iter(keys)) for keys in self._held.values() if len(keys) == most)
        return min(oldest, key=lambda key: self._sessions[key].last_used)

    def _evict(self, key: Key) -> None:
        self._forget(key)
        self.evicted += 1

    def _forget(self, key: Key) -> Session | None:
        session = self._sessions.pop(key, None)
        if session is not None:
            keys = self._held[session.principal_key]
            del keys[key]
            if not keys:
                del self._held[session.principal_key]
        return session
