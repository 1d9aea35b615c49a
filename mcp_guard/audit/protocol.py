"""The contract the gateway depends on; backends (SQLite now, PostgreSQL later) implement it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from mcp_guard.audit.models import AuditReceipt


@runtime_checkable
class AuditLog(Protocol):
    """An append-only, hash-chained, durably committed audit log."""

    async def append(self, kind: str, record: Mapping[str, Any]) -> AuditReceipt:
        """Append an entry; return only once it is durably committed (write-ahead).

        Raises:
            AuditUnavailableError: the entry could not be committed; fail closed.
            ValueError, TypeError: ``kind`` or ``record`` is invalid.
        """
        ...
