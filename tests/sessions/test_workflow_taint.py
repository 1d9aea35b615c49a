"""A workflow session sees what its calls' results carried, as the MCP session does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from mcp import types

from mcp_guard.inspection import Inspector
from mcp_guard.inspection.config import InspectionConfig
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.results import InspectResultStage, ResultInspectionSettings
from mcp_guard.sessions import SessionStore
from tests.risk.helpers import ALICE, MONDAY_10, call, scorer

pytestmark = pytest.mark.anyio

WORKFLOW = {"mcp-guard/workflow": "wf-42"}


async def test_a_secret_read_in_one_connection_raises_a_send_from_another_in_the_same_workflow() -> None:
    store = SessionStore()
    reading, reading_workflow = store.for_call("connection-1", ALICE, WORKFLOW)
    read = ToolCall(
        principal=ALICE,
        session_id="connection-1",
        tool="vault__read",
        arguments={"name": "deploy"},
        received_at=MONDAY_10 - timedelta(seconds=30),
        meta=WORKFLOW,
        session=reading,
        workflow=reading_workflow,
    )
    secret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    result = types.CallToolResult(content=[types.TextContent(type="text", text=secret)])
    await InspectResultStage(Inspector(InspectionConfig()), ResultInspectionSettings())(read, result)
    assert read.result_findings, "the result must carry a secret for this test to mean anything"

    sending, sending_workflow = store.for_call("connection-2", ALICE, WORKFLOW)
    send = call(
        "mail__send_email",
        {"external"},
        arguments={"to": "partner@vendor.example", "body": "here it is"},
        session=sending,
        workflow=sending_workflow,
    )
    correlation = scorer().score(send).factors["correlation"]
    assert correlation.score == 95
    assert correlation.reasons[0].startswith("workflow: result of vault__read carried")
