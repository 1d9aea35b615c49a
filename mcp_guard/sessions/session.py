"""One session's state: a ring buffer of recent calls, a capped taint list and counters."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from datetime import datetime
from fnmatch import fnmatchcase

from mcp_guard.decision import Decision
from mcp_guard.findings import Finding
from mcp_guard.sessions.records import SEVERITY_RANK, CallRecord, Taint, epoch


class Session:
    """The state of one MCP session (or one agent-supplied workflow).

    Built by :class:`~mcp_guard.sessions.store.SessionStore`; bound to one principal
    (``principal_key``). Every method is synchronous and bounded by the configured
    sizes. :meth:`count` satisfies the policy engine's ``SessionHistory`` protocol.
    """

    __slots__ = (
        "_calls",
        "_clock",
        "_index",
        "_max_calls",
        "_taints",
        "counters",
        "created",
        "id",
        "last_used",
        "principal_key",
    )

    def __init__(
        self,
        session_id: str,
        principal_key: str,
        *,
        max_calls: int,
        max_taints: int,
        clock: Callable[[], float],
    ) -> None:
        self.id = session_id
        self.principal_key = principal_key
        self._clock = clock
        self.created = clock()
        self.last_used = self.created
        self._max_calls = max_calls
        self._calls: deque[CallRecord] = deque(maxlen=max_calls)
        self._index: dict[str, deque[float]] = {}
        self._taints: deque[Taint] = deque(maxlen=max_taints)
        self.counters: Counter[str] = Counter()
        """``calls`` and one ``decision:<DECISION>`` entry per decision, over the session's life."""

    def record_call(self, record: CallRecord) -> CallRecord:
        """Remember ``record`` (stamping ``mono`` from the store clock when unset); returns it."""
        if math.isnan(record.mono):  # not stamped yet
            record = replace(record, mono=self._clock())
        self._calls.append(record)
        self._tag("*", record.ts)
        forwarded = record.decision is None or record.decision.forwards
        for action in record.actions:
            self._tag(action, record.ts)
            if forwarded:
                self._tag(f"{action}:forwarded", record.ts)
        if record.blocked:
            self._tag("blocked", record.ts)
        self.counters["calls"] += 1
        if record.decision is not None:
            self.counters[f"decision:{record.decision.value}"] += 1
        return record

    def record_result_findings(self, tool: str, findings: Iterable[Finding], now: datetime) -> Taint | None:
        """Remember that the result of ``tool`` carried ``findings`` (taint); ``None`` when empty."""
        found = list(findings)
        if not found:
            return None
        top = max(found, key=lambda f: SEVERITY_RANK[f.severity]).severity
        taint = Taint(
            tool=tool,
            at=now,
            categories=frozenset(f.category for f in found),
            types=frozenset(f.type for f in found),
            severity=top,
            mono=self._clock(),
        )
        self._taints.append(taint)
        self.counters["tainted_results"] += 1
        return taint

    def _tag(self, tag: str, ts: float) -> None:
        times = self._index.get(tag)
        if times is None:
            times = self._index[tag] = deque(maxlen=self._max_calls)
        times.append(ts)

    def count_tagged(self, tag: str, within_s: float, now_ts: float) -> int:
        """Calls carrying ``tag`` with wall time in ``(now_ts - within_s, now_ts]`` (epoch seconds).

        Tags: ``*`` (every call), each action class (``delete``: attempted deletes),
        ``<action>:forwarded`` (calls not blocked or held: ``read:forwarded``) and
        ``blocked``. Each tag remembers the last ``max_calls`` times; counting is a
        binary search, so it assumes calls are recorded in time order.
        """
        times = self._index.get(tag)
        if not times:
            return 0
        return bisect_right(times, now_ts) - bisect_right(times, now_ts - within_s)

    def count(self, tool_glob: str, within_s: float, now: datetime) -> int:
        """How many recorded calls to tools matching ``tool_glob`` happened in ``(now - within_s, now]``."""
        end = epoch(now)
        if tool_glob == "*":
            return self.count_tagged("*", within_s, end)
        start = end - within_s
        n = 0
        for rec in reversed(self._calls):
            if rec.ts <= start:
                break
            if rec.ts <= end and fnmatchcase(rec.tool, tool_glob):
                n += 1
        return n

    def recent(self, n: int | None = None) -> list[CallRecord]:
        """The last ``n`` calls (all remembered calls when ``None``), oldest first."""
        if n is None or n >= len(self._calls):
            return list(self._calls)
        if n <= 0:
            return []
        return list(self._calls)[-n:]

    def calls_since(self, start_ts: float) -> list[CallRecord]:
        """Remembered calls with wall time after ``start_ts`` (epoch seconds), newest first."""
        out: list[CallRecord] = []
        for rec in reversed(self._calls):
            if rec.ts <= start_ts:
                break
            out.append(rec)
        return out

    def tainted(self, categories: Collection[str], within_s: float, now: datetime) -> list[Taint]:
        """Taints of any of ``categories`` recorded in ``(now - within_s, now]``, newest first."""
        return self.tainted_at(categories, within_s, epoch(now))

    def tainted_at(self, categories: Collection[str], within_s: float, now_ts: float) -> list[Taint]:
        """:meth:`tainted` with the time in epoch seconds."""
        end = now_ts
        start = end - within_s
        out: list[Taint] = []
        for taint in reversed(self._taints):
            if taint.ts <= start:
                break
            if taint.ts <= end and not taint.categories.isdisjoint(categories):
                out.append(taint)
        return out

    def decisions(self, decision: Decision) -> int:
        """How many recorded calls reached ``decision`` over the session's life."""
        return self.counters[f"decision:{decision.value}"]

    def __len__(self) -> int:
        return len(self._calls)

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, principal={self.principal_key!r}, calls={len(self._calls)})"
