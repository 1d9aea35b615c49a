"""The contract the gateway depends on; backends (SQLite now, PostgreSQL later) implement it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from mcp_guard.audit.models import AuditReceipt, AuditUnavailableError

RecordBuilder = Callable[[], Mapping[str, Any]]
"""Makes the record of an entry appended with :meth:`AuditLog.append_behind`."""
FailureHandler = Callable[[AuditUnavailableError], None]
"""Told why an entry appended with :meth:`AuditLog.append_behind` could not be written."""


@runtime_checkable
class AuditLog(Protocol):
    """An append-only, hash-chained, durably committed audit log."""

    async def append(self, kind: str, record: Mapping[str, Any]) -> AuditReceipt:
        """Append an entry ahead of what it records (a decision entry before its call is
        forwarded) and return only once it is durably committed; the caller acts only
        after the commit, so the commit should be as quick as possible.

        Raises:
            AuditUnavailableError: the entry could not be committed; fail closed.
            ValueError, TypeError: ``kind`` or ``record`` is invalid.
        """
        ...

    def append_behind(self, kind: str, build: RecordBuilder, on_failure: FailureHandler) -> None:
        """Append an entry recording something already done (an outcome), without waiting.

        Returns at once. ``build`` makes the record soon after, on the event loop, once
        the caller's current step is over (so the caller's next step, e.g. answering its
        client, does not wait for it). Such entries are committed in the order they were
        appended, at the latest when the log closes; the backend may group them with
        others and must not hold up the caller's loop. If an entry cannot be built or
        committed, ``on_failure`` is told why (on the event loop).

        Raises:
            ValueError: ``kind`` is invalid.
        """
        ...

    async def durable(self, receipt: AuditReceipt) -> None:
        """Return once the entry behind ``receipt`` is as durable as the log promises.

        A backend whose ``append`` already waits for the disk returns at once; one that
        overlaps the disk's flush with the caller's work waits for that flush here.

        Raises:
            AuditUnavailableError: the entry could not be made durable; fail closed.
        """
        ...
