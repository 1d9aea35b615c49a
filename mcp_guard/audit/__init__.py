"""The tamper-evident audit log: hash-chained entries, signed checkpoints, verification.

See docs/audit.md. The gateway uses::

    async with SqliteAuditLog.open(AuditConfig(path=...)) as log:
        receipt = await log.append("decision", record)
"""

from mcp_guard.audit.canonical import canonical_bytes, canonical_json, digest
from mcp_guard.audit.models import (
    KNOWN_KINDS,
    AuditConfig,
    AuditEntry,
    AuditError,
    AuditReceipt,
    AuditUnavailableError,
    Checkpoint,
    RetentionError,
)
from mcp_guard.audit.protocol import AuditLog
from mcp_guard.audit.prune import PruneResult, prune_log
from mcp_guard.audit.schema import AuditFileError, EntryFilter
from mcp_guard.audit.store_sqlite import SqliteAuditLog
from mcp_guard.audit.verify import VerifyProblem, VerifyReport, verify

__all__ = [
    "KNOWN_KINDS",
    "AuditConfig",
    "AuditEntry",
    "AuditError",
    "AuditFileError",
    "AuditLog",
    "AuditReceipt",
    "AuditUnavailableError",
    "Checkpoint",
    "EntryFilter",
    "PruneResult",
    "RetentionError",
    "SqliteAuditLog",
    "VerifyProblem",
    "VerifyReport",
    "canonical_bytes",
    "canonical_json",
    "digest",
    "prune_log",
    "verify",
]
