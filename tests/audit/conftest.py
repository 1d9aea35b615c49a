"""Fixtures for the audit tests: a log configuration on a real SQLite file in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.audit import AuditConfig


@pytest.fixture
def config(tmp_path: Path) -> AuditConfig:
    return AuditConfig(
        path=tmp_path / "audit.db",
        signing_key_path=tmp_path / "keys" / "audit-signing.pem",
        checkpoint_every=10,
        busy_timeout_ms=50,
    )
