"""Wake-ups for the tasks holding calls: an event per request, kept only while someone waits on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio


class Wakeups:
    """Per-request wake-up events for waiters; the service wakes them when it changes a request.

    An entry exists only while at least one waiter is inside :meth:`watching` for that
    request, so the table holds at most one entry per request being waited on, however
    the wait ends (a decision here or in another process, an expiry, an error, a
    cancellation).
    """

    def __init__(self) -> None:
        self._events: dict[str, anyio.Event] = {}
        self._waiters: Counter[str] = Counter()

    def __len__(self) -> int:
        """How many requests have a waiter right now."""
        return len(self._waiters)

    @contextmanager
    def watching(self, request_id: str) -> Iterator[Callable[[], anyio.Event]]:
        """Register a waiter on ``request_id`` for the duration of the block.

        Yields a function giving the event the next :meth:`wake` of ``request_id`` sets;
        take it before reading the request, so a change made in between still wakes.
        """
        self._waiters[request_id] += 1
        try:
            yield lambda: self._event(request_id)
        finally:
            self._waiters[request_id] -= 1
            if self._waiters[request_id] == 0:
                del self._waiters[request_id]
                self._events.pop(request_id, None)

    def _event(self, request_id: str) -> anyio.Event:
        event = self._events.get(request_id)
        if event is None:
            event = self._events[request_id] = anyio.Event()
        return event

    def wake(self, request_id: str) -> None:
        """Wake every waiter of ``request_id`` (nothing is kept when nobody waits)."""
        event = self._events.pop(request_id, None)
        if event is not None:
            event.set()
