"""The outcome entry of a forwarded call: appended without waiting, written once the result
has gone, and a failure to write it logged naming the call."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import pytest
from mcp import types

from mcp_guard.audit import AuditConfig, SqliteAuditLog, verify
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.recording import CallRecorder
from mcp_guard.principal import Principal

from .helpers import public_key

pytestmark = pytest.mark.anyio


def forwarded_call() -> ToolCall:
    return ToolCall(
        principal=Principal(user="alice", agent="claude"),
        session_id="s-1",
        tool="bank__get_balance",
        arguments={"account": "ACC-1001"},
        received_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
    )


RESULT = types.CallToolResult(content=[types.TextContent(type="text", text="42.00 EUR")])


async def test_the_outcome_is_built_after_the_callers_step_and_written_after_its_decision(
    config: AuditConfig,
) -> None:
    call = forwarded_call()
    async with SqliteAuditLog.open(config) as log:
        recorder = CallRecorder(log)
        await recorder.decision(call)
        recorder.write_outcome(call, RESULT, 12.3456)
        assert log._unbuilt  # nothing of the outcome was done on the caller's step
        await anyio.lowlevel.checkpoint()
        assert not log._unbuilt
    with sqlite3.connect(config.path) as db:
        rows = db.execute("SELECT kind, record FROM entries ORDER BY seq").fetchall()
    assert [kind for kind, _ in rows] == ["decision", "outcome"]
    outcome = json.loads(rows[1][1])
    assert outcome == recorder.outcome_record(call, RESULT, 12.3456)
    assert outcome["decision_audit_id"] == call.audit_id and outcome["latency_ms"] == 12.346
    assert verify(config.path, public_key(config)).ok


async def test_an_outcome_that_cannot_be_written_is_logged_naming_the_tool_and_its_decision(
    config: AuditConfig, caplog: pytest.LogCaptureFixture
) -> None:
    call = forwarded_call()
    async with SqliteAuditLog.open(config) as log:
        recorder = CallRecorder(log)
        await recorder.decision(call)
    with caplog.at_level(logging.ERROR, logger="mcp_guard.pipeline.recording"):
        recorder.write_outcome(call, RESULT, 1.0)
        await anyio.lowlevel.checkpoint()
    decision = call.audit_id
    assert [r.getMessage() for r in caplog.records] == [
        f"could not audit the outcome of bank__get_balance (decision {decision}): the audit log is closed"
    ]
