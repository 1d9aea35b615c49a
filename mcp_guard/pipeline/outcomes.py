"""What the client gets back: refusals, upstream failures and forwarded results with their decision."""

from __future__ import annotations

from typing import Any

from mcp import types

from mcp_guard.decision import Decision, Verdict
from mcp_guard.pipeline.call import ToolCall


def refusal(call: ToolCall) -> types.CallToolResult:
    """The ``isError`` result for a call that was not forwarded (DESIGN.md §7)."""
    verdict = call.verdict
    rules = ", ".join(verdict.rules) or "none"
    reason = verdict.reason if verdict.reason.endswith(".") else f"{verdict.reason}."
    text = f"mcp-guard: {verdict.decision.value} (rule: {rules}). {reason}"
    if call.approval_id:
        text += f" Approval id: {call.approval_id}."
    if call.audit_id:
        text += f" Audit id: {call.audit_id}."
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        is_error=True,
        _meta={"mcp-guard/decision": verdict.meta(call.audit_id, call.approval_id)},
    )


def blocked(rule: str, reason: str, risk: float | None = None) -> Verdict:
    """A BLOCK verdict by one rule."""
    return Verdict(decision=Decision.BLOCK, rules=(rule,), risk=risk, reason=reason)


def upstream_failure(call: ToolCall, rule: str, reason: str) -> types.CallToolResult:
    """An error result for a call that was allowed but could not be completed upstream."""
    meta = call.verdict.meta(call.audit_id, call.approval_id) | {"upstream_error": rule}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"mcp-guard: {reason}")],
        is_error=True,
        _meta={"mcp-guard/decision": meta},
    )


def with_decision(result: types.CallToolResult, call: ToolCall) -> types.CallToolResult:
    """Attach the decision to a forwarded result; WARN also shows the warning to the model and user."""
    verdict = call.verdict
    meta = dict(result.meta or {})
    meta.setdefault("mcp-guard/decision", verdict.meta(call.audit_id, call.approval_id))
    update: dict[str, Any] = {"meta": meta}
    if verdict.decision is Decision.WARN:
        rules = ", ".join(verdict.rules) or "none"
        warning = types.TextContent(type="text", text=f"[mcp-guard warning] rule {rules}: {verdict.reason}")
        update["content"] = [*result.content, warning]
    return result.model_copy(update=update)
