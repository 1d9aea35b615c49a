"""An in-memory :class:`~mcp_guard.policy.types.SessionHistory` (tests, single process)."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from fnmatch import fnmatchcase


class InMemoryHistory:
    """Remembers ``(tool, time)`` of recent calls, keeping at most ``max_entries``."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._calls: deque[tuple[str, datetime]] = deque(maxlen=max_entries)

    def record(self, tool: str, at: datetime) -> None:
        self._calls.append((tool, at))

    def count(self, tool_glob: str, within_s: float, now: datetime) -> int:
        """Calls to tools matching ``tool_glob`` in ``(now - within_s, now]``."""
        n = 0
        for tool, at in self._calls:
            age = (now - at).total_seconds()
            if 0 <= age < within_s and fnmatchcase(tool, tool_glob):
                n += 1
        return n
