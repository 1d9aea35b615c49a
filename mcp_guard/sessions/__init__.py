"""Session state: recent calls, result taint and counters per MCP session and per workflow.

    store = SessionStore(SessionConfig(), clock=time.monotonic)
    session, workflow = store.for_call(session_id, principal, meta)
    session.record_call(CallRecord(tool, at=now, actions=..., decision=..., shape=argument_shape(args)))
    session.record_result_findings(tool, result_findings, now)
    session.count("mail__*", within_s=60, now=now)        # the policy engine's SessionHistory

docs/risk.md describes how the risk score reads sessions.
"""

from mcp_guard.sessions.config import SessionConfig
from mcp_guard.sessions.records import CallRecord, Taint
from mcp_guard.sessions.session import Session
from mcp_guard.sessions.shape import argument_shape, shape_paths
from mcp_guard.sessions.store import SessionMismatch, SessionStore, workflow_id

__all__ = [
    "CallRecord",
    "Session",
    "SessionConfig",
    "SessionMismatch",
    "SessionStore",
    "Taint",
    "argument_shape",
    "shape_paths",
    "workflow_id",
]
