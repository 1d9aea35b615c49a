"""Audit records of calls: the decision entry (write-ahead) and the outcome entry.

The decision entry is durably committed before a call is forwarded; if it cannot be
written the call is refused (fail closed). The outcome entry is written after the result
has been handed back, so it adds no latency. Arguments are stored per the configured
policy: ``redacted`` (findings replaced by typed placeholders), ``full`` or
``digest`` (nothing but the digest) — the SHA-256 digest of the raw arguments is
always stored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from mcp import types

from mcp_guard.audit import AuditLog, AuditUnavailableError, digest
from mcp_guard.decision import Decision, Verdict
from mcp_guard.inspection import redact
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.outcomes import blocked
from mcp_guard.policy import PolicySet
from mcp_guard.principal import Principal

logger = logging.getLogger(__name__)

ArgumentPolicy = Literal["redacted", "full", "digest"]
Redactor = Callable[[Any, ToolCall], Any]


def redact_findings(value: Any, call: ToolCall) -> Any:
    """Arguments for the audit log: every finding replaced by its typed placeholder."""
    return redact({"arguments": value}, call.findings)["arguments"] if call.findings else value


def policy_record(policies: PolicySet | None, why: str) -> dict[str, Any]:
    """The ``policy_reload`` entry: why, and the digest and warnings of the set now in force."""
    if policies is None:
        return {"why": why, "policies": None}
    return {"why": why, "digest": policies.digest, "warnings": list(policies.warnings)}


class CallRecorder:
    """Writes decision and outcome entries for tool calls."""

    def __init__(
        self, log: AuditLog, arguments: ArgumentPolicy = "redacted", redactor: Redactor = redact_findings
    ) -> None:
        self.log = log
        self.arguments = arguments
        self.redactor = redactor

    async def decision(self, call: ToolCall) -> Verdict:
        """Record the call's verdict; on failure return a BLOCK verdict instead (fail closed)."""
        try:
            receipt = await self.log.append("decision", self._decision_record(call))
        except AuditUnavailableError as exc:
            call.verdict = blocked(
                "audit-unavailable",
                f"the call was not forwarded because it could not be audited ({exc.reason})",
            )
            return call.verdict
        call.audit_id, call.audit_receipt = receipt.id, receipt
        return call.verdict

    async def read(
        self,
        principal: Principal,
        session_id: str,
        method: str,
        target: str,
        upstream: str | None,
        *,
        allowed: bool,
    ) -> bool:
        """Write ahead the entry of a ``resources/read`` or ``prompts/get``; False if it could
        not be written (the read is then refused)."""
        record = {
            "time": datetime.now(UTC).isoformat(),
            "principal": principal_record(principal),
            "session": session_id,
            "method": method,
            "target": target,
            "upstream": upstream,
            "decision": (Decision.ALLOW if allowed else Decision.BLOCK).value,
            "reason": "visible to the principal" if allowed else "unknown, or hidden from the principal",
        }
        try:
            await self.log.append("read", record)
        except AuditUnavailableError as exc:
            logger.error("could not audit %s %s: %s; refused", method, target, exc.reason)
            return False
        return True

    async def durable(self, call: ToolCall) -> str | None:
        """Wait until the call's decision entry is on disk (``synchronous: OVERLAPPED``
        flushes it while the call runs upstream); why it cannot be, if it cannot."""
        if call.audit_receipt is None:
            return None
        try:
            await self.log.durable(call.audit_receipt)
        except AuditUnavailableError as exc:
            return exc.reason
        return None

    def outcome_record(
        self, call: ToolCall, result: types.CallToolResult, latency_ms: float
    ) -> dict[str, Any]:
        """The outcome entry of a forwarded call."""
        return {
            "decision_audit_id": call.audit_id,
            "session": call.session_id,
            "principal": principal_record(call.principal),
            "tool": call.tool,
            "upstream": call.route.upstream if call.route else None,
            "decision": call.verdict.decision.value,
            "rules": list(call.verdict.rules),
            "is_error": bool(result.is_error),
            "upstream_error": (result.meta or {}).get("mcp-guard/decision", {}).get("upstream_error"),
            "result_findings": sorted({f.type for f in call.result_findings}),
            "result_digest": digest(result.model_dump(mode="json", by_alias=True, exclude_none=True)),
            "latency_ms": round(latency_ms, 3),
        }

    def write_outcome(self, call: ToolCall, result: types.CallToolResult, latency_ms: float) -> None:
        """Append the outcome entry of a call whose result is about to go to the client,
        without waiting: the log builds the record once the caller's step is over, so none
        of it delays the result. A failure is logged: the decision entry, written ahead,
        stays the proof."""

        def outcome_not_written(exc: AuditUnavailableError) -> None:
            logger.error(
                "could not audit the outcome of %s (decision %s): %s", call.tool, call.audit_id, exc.reason
            )

        self.log.append_behind(
            "outcome", lambda: self.outcome_record(call, result, latency_ms), outcome_not_written
        )

    def _decision_record(self, call: ToolCall) -> dict[str, Any]:
        verdict = call.verdict
        arguments = call.arguments
        try:
            args_digest = digest(arguments)
        except ValueError:  # NaN or Infinity: such a call is never forwarded (ValidateStage)
            arguments = _representable(arguments)
            args_digest = digest(arguments)
        record: dict[str, Any] = {
            "time": call.received_at.isoformat(),
            "principal": principal_record(call.principal),
            "session": call.session_id,
            "client_info": call.client_info,
            "tool": call.tool,
            "upstream": call.route.upstream if call.route else None,
            "actions": sorted(call.actions),
            "args_digest": args_digest,
            "findings": [f.model_dump(mode="json") for f in call.findings],
            "risk": call.risk,
            "risk_factors": call.risk_factors,
            "rules": list(verdict.rules),
            "decision": verdict.decision.value,
            "reason": verdict.reason,
            "details": verdict.details,
            "stage_us": {k: round(v, 1) for k, v in call.timings_us.items()},
        }
        shown = arguments_as_recorded(arguments, call, self.arguments, self.redactor)
        if shown is not None:
            record["arguments"] = shown
        return record


def arguments_as_recorded(
    arguments: Any, call: ToolCall, policy: ArgumentPolicy, redactor: Redactor = redact_findings
) -> Any | None:
    """``arguments`` as the ``policy`` lets them be kept: as sent (``full``), with every
    finding replaced by its placeholder (``redacted``), or not at all (``digest``: None).
    The audit log and the approvals a call raises both keep them so."""
    if policy == "full":
        return arguments
    if policy == "redacted":
        return redactor(arguments, call)
    return None


def _representable(value: Any) -> Any:
    """``value`` with each NaN or infinity replaced by its name (``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``), so that the record of a call carrying one can still be written."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _representable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_representable(v) for v in value]
    return value


def principal_record(p: Principal) -> dict[str, Any]:
    """Who acted, as every audit entry names them (built once per principal: shared, never
    to be changed)."""
    return p.audit_record
