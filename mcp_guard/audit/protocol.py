"""The contract the gateway depends on; backends (SQLite now, PostgreSQL later) implement it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from mcp_guard.audit.models import AuditReceipt


@runtime_checkable
class AuditLog(Protocol):
    """An append-only, hash-chained, durably committed audit log."""

    async def append(self, kind: str, record: Mapping[str, Any], *, write_ahead: bool = True) -> AuditReceipt:
        """Append an entry; return only once it is durably committed.

        ``write_ahead=True``: the caller acts only after the commit (a decision entry
        before its call is forwarded), so the commit should be as quick as possible.
        ``write_ahead=False``: the entry records something already done (an outcome);
        the backend may group it with others and must not hold up the caller's loop.

        Raises:
            AuditUnavailableError: the entry could not be committed; fail closed.
            ValueError, TypeError: ``kind`` or ``record`` is invalid.
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
