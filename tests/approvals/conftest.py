"""Fixtures for the approvals tests: a real SQLite file and key in tmp_path, a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.approvals import ApprovalConfig
from tests.approvals.helpers import FakeClock, RecordingAudit, make_config


@pytest.fixture
def config(tmp_path: Path) -> ApprovalConfig:
    return make_config(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()
