"""The gateway: owns the upstream supervisors, the catalog and the request pipeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus
from mcp import types
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_guard.audit import SqliteAuditLog
from mcp_guard.config.settings import GatewaySettings
from mcp_guard.decision import Decision, Verdict
from mcp_guard.errors import UnknownToolError, UpstreamUnavailableError
from mcp_guard.notify import ListChangedNotifier
from mcp_guard.pipeline.access import AccessPolicy, AllowAll, AllowlistPolicy, ToolInfo
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.chain import Chain, ResultChain, ResultStage, Stage, refusal
from mcp_guard.pipeline.recording import CallRecorder
from mcp_guard.pipeline.stages import DecideStage, RouteStage, ValidateStage
from mcp_guard.principal import Principal
from mcp_guard.upstreams.catalog import Catalog, build_catalog
from mcp_guard.upstreams.config import UpstreamsFile
from mcp_guard.upstreams.supervisor import Backoff, ProgressCallback, Status, Upstream

logger = logging.getLogger(__name__)


def default_policy(settings: GatewaySettings) -> AccessPolicy:
    if settings.access.allow_all:
        return AllowAll()
    return AllowlistPolicy(settings.access.grants)


class Gateway:
    """Everything behind the MCP endpoint. :meth:`run` owns every background task."""

    def __init__(
        self,
        upstreams: UpstreamsFile,
        settings: GatewaySettings | None = None,
        *,
        policy: AccessPolicy | None = None,
        backoff: Backoff | None = None,
        extra_stages: Sequence[Stage] = (),
        result_stages: Sequence[ResultStage] = (),
    ) -> None:
        self.settings = settings or GatewaySettings()
        self.upstreams_file = upstreams
        self.policy: AccessPolicy = policy or default_policy(self.settings)
        self.upstreams: dict[str, Upstream] = {
            name: Upstream(name, config, self._upstream_changed, backoff)
            for name, config in upstreams.enabled().items()
        }
        self.catalog = Catalog()
        self.notifier = ListChangedNotifier(self.visible_tool_names)
        self.chain = Chain(
            [
                RouteStage(lambda: self.catalog, self.tool_info, lambda: self.policy),
                ValidateStage(self.settings.max_argument_bytes),
                *extra_stages,
                DecideStage(self.tool_info, lambda: self.policy),
            ]
        )
        self.result_chain = ResultChain(result_stages)
        self.recorder: CallRecorder | None = None
        self._tool_infos: dict[str, ToolInfo] = {}

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the audit log and supervise every upstream until cancelled (all children end with it).

        Raises:
            AuditUnavailableError: the audit log cannot be opened (the gateway does not start).
        """
        audit = self.settings.audit
        async with SqliteAuditLog.open(audit) as log, anyio.create_task_group() as tg:
            self.recorder = CallRecorder(log, audit.arguments)
            try:
                for upstream in self.upstreams.values():
                    tg.start_soon(upstream.run, name=f"upstream:{upstream.name}")
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self.recorder = None

    async def wait_settled(self, timeout_s: float) -> None:
        """Wait until every upstream has either connected or failed once (for start-up and tests)."""
        with anyio.move_on_after(timeout_s):
            for upstream in self.upstreams.values():
                while upstream.status is Status.CONNECTING:
                    await upstream.changed.wait()

    async def _upstream_changed(self, name: str) -> None:
        listings = {n: u.listing for n, u in self.upstreams.items()}
        prefixes = {n: self.upstreams_file.prefix_of(n) for n in self.upstreams}
        self.catalog = build_catalog(listings, prefixes)
        self._tool_infos = {
            tool_name: ToolInfo(
                tool_name, route.upstream, self.upstreams[route.upstream].config.environment, tool
            )
            for tool_name, (route, tool) in self.catalog.tools.items()
        }
        await self.notifier.tools_changed()
        await self.notifier.catalog_changed()

    async def set_policy(self, policy: AccessPolicy) -> None:
        """Swap the decision point atomically and tell clients whose tool lists changed."""
        self.policy = policy
        await self.notifier.tools_changed()

    # -- discovery ----------------------------------------------------------------------

    def tool_info(self, name: str) -> ToolInfo | None:
        return self._tool_infos.get(name)

    def visible_tools(self, principal: Principal) -> list[types.Tool]:
        policy = self.policy
        return [info.definition for info in self._tool_infos.values() if policy.visible(principal, info)]

    def visible_tool_names(self, principal: Principal) -> frozenset[str]:
        return frozenset(tool.name for tool in self.visible_tools(principal))

    # -- calls --------------------------------------------------------------------------

    async def call_tool(
        self,
        principal: Principal,
        session_id: str,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        meta: Mapping[str, Any] | None = None,
        client_info: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> types.CallToolResult:
        """Decide, then forward or refuse one call.

        Raises:
            UnknownToolError: the tool does not exist or is hidden from this principal.
        """
        call = ToolCall(
            principal=principal,
            session_id=session_id,
            tool=name,
            arguments=dict(arguments or {}),
            received_at=datetime.now(UTC),
            meta=dict(meta) if meta else None,
            client_info=dict(client_info) if client_info else None,
        )
        recorder = self.recorder
        if recorder is None:  # not running: never forward unaudited
            call.verdict = Verdict(
                decision=Decision.BLOCK,
                rules=("audit-unavailable",),
                reason="the audit log is not open; the call was not forwarded",
            )
            return refusal(call)
        try:
            await self.chain.run(call)
        except UnknownToolError:
            call.verdict = Verdict(decision=Decision.BLOCK, rules=("unknown-tool",), reason="unknown tool")
            await recorder.decision(call)
            raise
        verdict = await recorder.decision(call)
        if not verdict.decision.forwards:
            return refusal(call)
        started = time.perf_counter()
        result = await self._forward(call, on_progress)
        result = await self.result_chain.run(call, result)
        if not await recorder.outcome(call, result, started):
            call.verdict = Verdict(
                decision=Decision.BLOCK,
                rules=("audit-unavailable",),
                reason="the call ran, but its result is withheld because its outcome could not be audited",
            )
            return refusal(call)
        return _with_decision(result, call)

    async def _forward(self, call: ToolCall, on_progress: ProgressCallback | None) -> types.CallToolResult:
        assert call.route is not None
        upstream = self.upstreams[call.route.upstream]
        arguments = call.forward_arguments if call.forward_arguments is not None else call.arguments
        try:
            return await upstream.call_tool(
                call.route.original, arguments, meta=call.meta, on_progress=on_progress
            )
        except UpstreamUnavailableError as exc:
            return _upstream_failure(call, "upstream-unavailable", str(exc))
        except TimeoutError:
            return _upstream_failure(
                call,
                "upstream-timeout",
                f"upstream '{upstream.name}' did not answer within {upstream.config.call_timeout_s:g}s; "
                "the call was cancelled upstream",
            )
        except MCPError as exc:
            return _upstream_failure(call, "upstream-error", f"upstream '{upstream.name}' failed: {exc}")
        except ValidationError as exc:
            return _upstream_failure(
                call,
                "upstream-malformed",
                f"upstream '{upstream.name}' returned a malformed result "
                f"({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']})",
            )


def _upstream_failure(call: ToolCall, rule: str, reason: str) -> types.CallToolResult:
    """An error result for a call that was allowed but could not be completed upstream."""
    text = f"mcp-guard: {reason}"
    meta = call.verdict.meta(call.audit_id, call.approval_id) | {"upstream_error": rule}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=True, _meta={"mcp-guard/decision": meta}
    )


def _with_decision(result: types.CallToolResult, call: ToolCall) -> types.CallToolResult:
    """Attach the decision to a forwarded result; WARN also shows the warning to the model and user."""
    verdict = call.verdict
    meta = dict(result.meta or {})
    meta.setdefault("mcp-guard/decision", verdict.meta(call.audit_id, call.approval_id))
    update: dict[str, Any] = {"meta": meta}
    if verdict.decision is Decision.WARN:
        warning = types.TextContent(type="text", text=_warning_text(verdict))
        update["content"] = [*result.content, warning]
    return result.model_copy(update=update)


def _warning_text(verdict: Verdict) -> str:
    rules = ", ".join(verdict.rules) or "none"
    return f"[mcp-guard warning] rule {rules}: {verdict.reason}"
