"""A workflow session, and the principal's session across connections, see what its calls'
results carried, as the MCP session does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from mcp import types

from mcp_guard.inspection import Inspector
from mcp_guard.inspection.config import InspectionConfig
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.results import InspectResultStage, ResultInspectionSettings
from mcp_guard.risk.model import FactorScore
from mcp_guard.sessions import Session, SessionStore
from tests.risk.helpers import ALICE, MONDAY_10, call, scorer

pytestmark = pytest.mark.anyio

WORKFLOW = {"mcp-guard/workflow": "wf-42"}


async def read_a_secret(store: SessionStore, meta: dict[str, str] | None) -> ToolCall:
    """A call on connection 1 whose result carries a secret, through the result stage."""
    reading, reading_workflow, everything = store.for_call("connection-1", ALICE, meta)
    read = ToolCall(
        principal=ALICE,
        session_id="connection-1",
        tool="vault__read",
        arguments={"name": "deploy"},
        received_at=MONDAY_10 - timedelta(seconds=30),
        meta=meta,
        session=reading,
        workflow=reading_workflow,
        principal_session=everything,
    )
    secret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    result = types.CallToolResult(content=[types.TextContent(type="text", text=secret)])
    await InspectResultStage(Inspector(InspectionConfig()), ResultInspectionSettings())(read, result)
    return read


def send_out(sending: Session, workflow: Session | None, principal_session: Session | None) -> FactorScore:
    """The correlation factor of an external e-mail sent from connection 2."""
    send = call(
        "mail__send_email",
        {"external"},
        arguments={"to": "partner@vendor.example", "body": "here it is"},
        session=sending,
        workflow=workflow,
        principal_session=principal_session,
    )
    return scorer().score(send).factors["correlation"]


async def test_a_secret_read_in_one_connection_raises_a_send_from_another_in_the_same_workflow() -> None:
    store = SessionStore()
    read = await read_a_secret(store, WORKFLOW)
    assert read.result_findings, "the result must carry a secret for this test to mean anything"
    sending, sending_workflow, _ = store.for_call("connection-2", ALICE, WORKFLOW)
    correlation = send_out(sending, sending_workflow, None)
    assert correlation.score == 95
    assert correlation.reasons[0].startswith("workflow: result of vault__read carried")


async def test_a_secret_read_in_one_connection_raises_a_send_from_a_new_one_without_a_workflow() -> None:
    """Reconnecting (a fresh MCP session, no workflow id) does not shed the taint."""
    store = SessionStore()
    read = await read_a_secret(store, None)
    assert read.workflow is None
    sending, _, same_principal = store.for_call("connection-2", ALICE)
    assert same_principal is read.principal_session and sending is not read.session
    correlation = send_out(sending, None, same_principal)
    assert correlation.score == 95
    assert correlation.reasons[0].startswith("across connections: result of vault__read carried")
