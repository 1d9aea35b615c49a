"""The gateway: owns the upstream supervisors, what it exposes, the services and the pipeline."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus
from mcp import types

from mcp_guard.audit import AuditUnavailableError
from mcp_guard.config.settings import GatewaySettings
from mcp_guard.controls import BreakerTransition, Controls, ControlsConfig
from mcp_guard.errors import ConfigError, UnknownToolError
from mcp_guard.exposure import Exposure
from mcp_guard.notify import ListChangedNotifier
from mcp_guard.pipeline.access import AccessPolicy, AllowAll, AllowlistPolicy, PolicyAccess
from mcp_guard.pipeline.call import ProgressReporter, ToolCall
from mcp_guard.pipeline.chain import Chain, ResultChain
from mcp_guard.pipeline.forwarding import forward
from mcp_guard.pipeline.governance import ApprovalStage, InspectStage, LimitsStage, ScoreStage
from mcp_guard.pipeline.outcomes import blocked, refusal, upstream_failure, with_decision
from mcp_guard.pipeline.recording import CallRecorder, policy_record
from mcp_guard.pipeline.results import BoundStage, InspectResultStage
from mcp_guard.pipeline.stages import DecideStage, RouteStage, ValidateStage
from mcp_guard.policy import PolicySet, PolicyStore, ToolInfo
from mcp_guard.policy.compiler import unknown_glob_warnings, unknown_upstream_warnings
from mcp_guard.principal import Principal
from mcp_guard.services import Services, controls_config, open_services
from mcp_guard.sessions import CallRecord, SessionMismatch
from mcp_guard.tool_wire import WireTool
from mcp_guard.upstreams.catalog import Catalog, Route
from mcp_guard.upstreams.config import UpstreamsFile
from mcp_guard.upstreams.reaper import Reaper
from mcp_guard.upstreams.supervisor import Backoff, Status, Upstream

logger = logging.getLogger(__name__)

PIN_REFRESH_S = 5.0
POLICY_POLL_S = 1.0


class Gateway:
    """Everything behind the MCP endpoint. :meth:`run` owns every background task and service."""

    def __init__(
        self,
        upstreams: UpstreamsFile,
        settings: GatewaySettings | None = None,
        *,
        policy_dir: str | Path | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        """Raises: ConfigError — the policy folder or the operational controls are invalid."""
        self.settings = (settings or GatewaySettings()).with_state_dir()
        self.upstreams_file = upstreams
        self.policy_store = PolicyStore(policy_dir) if policy_dir is not None else None
        policies = self.policy_store.current() if self.policy_store else None
        self.policy: AccessPolicy = self._access(policies)
        self._controls_config(policies)  # a bad limit stops start-up with file:line, not the first call
        self.upstreams: dict[str, Upstream] = {
            name: Upstream(name, config, self._upstream_changed, backoff)
            for name, config in upstreams.enabled().items()
        }
        self.exposure = Exposure(
            self.upstreams,
            upstreams,
            self.policy_store,
            access=lambda: self.policy,
            services=lambda: self.services,
        )
        self.notifier = ListChangedNotifier(self.exposure.worked_out_tool_names)
        self.services: Services | None = None
        self.controls: Controls | None = None
        self.recorder: CallRecorder | None = None
        self.chain = Chain([])
        self.result_chain = ResultChain([])
        self._reload_lock = anyio.Lock()
        self._policies_in_force = policies

    def _access(self, policies: PolicySet | None) -> AccessPolicy:
        if policies is not None:
            return PolicyAccess(policies)
        if self.settings.access.allow_all:
            return AllowAll()
        return AllowlistPolicy(self.settings.access.grants)

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the services and supervise every upstream until cancelled (all children end with it).

        Reports started once every upstream has connected or failed once.

        Raises:
            AuditUnavailableError: the audit log cannot be opened (the gateway does not start).
            ConfigError: the operational controls are invalid.
        """
        async with (
            open_services(self.settings) as services,
            Reaper.open() as reaper,
            anyio.create_task_group() as tg,
        ):
            self.services = services
            self.recorder = CallRecorder(services.audit, self.settings.audit.arguments)
            policies = self.policy_store.current() if self.policy_store else None
            self.controls = self._build_controls(policies)
            self._build_chains(services)
            await services.audit.append("policy_reload", policy_record(policies, "loaded at start"))
            try:
                for upstream in self.upstreams.values():
                    tg.start_soon(upstream.run, reaper, name=f"upstream:{upstream.name}")
                tg.start_soon(self._refresh_pins_periodically)
                tg.start_soon(self._reload_on_sighup)
                if self.policy_store is not None:
                    tg.start_soon(self._watch_policies, self.policy_store)
                await self._settle()
                self.report_policy_warnings()
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self.services = self.recorder = None

    def _controls_config(self, policies: PolicySet | None) -> ControlsConfig:
        """Raises: ConfigError — a control is invalid."""
        return controls_config(self.settings, self.upstreams_file, policies.limit_specs if policies else [])

    def _build_controls(self, policies: PolicySet | None) -> Controls:
        assert self.services is not None
        return Controls(
            self._controls_config(policies),
            self.services.control_state,
            on_breaker_change=self._breaker_changed,
        )

    def _build_chains(self, services: Services) -> None:
        assert self.controls is not None
        controls = self.controls
        self.chain = Chain(
            [
                RouteStage(self.exposure.lookup_tool, lambda: self.policy),
                ValidateStage(self.settings.max_argument_bytes),
                InspectStage(services.argument_inspector),
                ScoreStage(services.scorer),
                DecideStage(lambda: self.policy),
                LimitsStage(controls),
                ApprovalStage(
                    services.approvals,
                    arguments=self.settings.audit.arguments,
                    controls=lambda: self.controls or controls,  # those in force when a hold ends
                ),
            ]
        )
        self.result_chain = ResultChain(
            [
                BoundStage(controls),
                InspectResultStage(services.result_inspector, self.settings.results),
            ]
        )

    def _breaker_changed(self, transition: BreakerTransition) -> None:
        logger.warning(
            "circuit breaker %s (%s): %s -> %s: %s",
            transition.breaker,
            transition.target,
            transition.old.value,
            transition.new.value,
            transition.reason,
        )

        def not_audited(exc: AuditUnavailableError) -> None:
            logger.error(
                "could not audit circuit breaker %s changing state: %s", transition.breaker, exc.reason
            )

        if self.services is not None:  # the change has happened: record it without holding up the call
            self.services.audit.append_behind(
                "breaker", lambda: transition.model_dump(mode="json"), not_audited
            )

    async def _settle(self) -> None:
        """Wait until every upstream has connected or failed once (at most its connect timeout),
        so the first client sees the tools instead of an empty list."""
        timeout = max((u.config.connect_timeout_s for u in self.upstreams.values()), default=0.0)
        with anyio.move_on_after(timeout):
            for upstream in self.upstreams.values():
                while upstream.status is Status.CONNECTING:
                    await upstream.changed.wait()

    # -- policies -----------------------------------------------------------------------

    def report_policy_warnings(self) -> list[str]:
        """Log (and return) policy warnings, including tool globs that match no tool now listed."""
        if self.policy_store is None:
            return []
        policies = self.policy_store.current()
        rules = list(policies.rules)
        warnings = [
            *policies.warnings,
            *unknown_glob_warnings(rules, list(self.exposure.tools)),
            *unknown_upstream_warnings(rules, self.upstreams_file.upstreams.keys()),
        ]
        for warning in warnings:
            logger.warning("policy: %s", warning)
        return warnings

    async def reload_policies(self, why: str) -> ConfigError | None:
        """Reload the policy folder; a broken folder never replaces the running set.

        Returns the error (also logged and audited) when the new folder was refused.
        """
        if self.policy_store is None:
            return None
        policies, error = await anyio.to_thread.run_sync(self.policy_store.try_reload)
        await self._apply_reload(policies, error, why)
        return error

    async def _reload_on_sighup(self) -> None:
        """SIGHUP: reload the policy folder and pick up operator decisions on tool pins."""
        with anyio.open_signal_receiver(signal.SIGHUP) as signals:
            async for _ in signals:
                logger.info("SIGHUP: reloading policies and tool pins")
                await self._reload_in_background(self.reload_policies("SIGHUP"), "SIGHUP")
                await self.refresh_pins()

    async def _watch_policies(self, store: PolicyStore) -> None:
        async def on_reload(policies: PolicySet | None, error: ConfigError | None) -> None:
            why = "policy files changed"
            await self._reload_in_background(self._apply_reload(policies or store.current(), error, why), why)

        await store.watch(on_reload, interval_s=POLICY_POLL_S)

    async def _reload_in_background(self, reload: Awaitable[object], why: str) -> None:
        """Run a reload the gateway started itself (SIGHUP, the policy watcher). When the audit
        log cannot record it, that is logged and clients are told what they see now, instead
        of the error stopping the gateway: the policies it swapped in stay in force, and each
        call's own decision entry still fails closed while the log is unavailable."""
        try:
            await reload
        except AuditUnavailableError as exc:
            current = self.policy_store.current() if self.policy_store is not None else None
            logger.error(
                "could not audit the policy reload (%s): %s; the policies in force now have digest %s",
                why,
                exc.reason,
                current.digest if current is not None else None,
            )
            await self.notifier.tools_changed()

    async def _apply_reload(self, policies: PolicySet, error: ConfigError | None, why: str) -> None:
        """Put the newest loaded set in force, or record why the folder was refused.

        Reloads from SIGHUP, the admin API and the file watcher load in worker threads that
        may hand their sets back out of order. So they are applied one at a time, each puts
        in force the newest set the store holds (``policies`` itself, unless a later load
        replaced it), and one that finds that set already in force has nothing to do: once
        a reload returns, the newest set is in force, and an older one never comes back."""
        async with self._reload_lock:
            if error is None and self.policy_store is not None:
                policies = self.policy_store.current()
                if policies is self._policies_in_force:
                    return
            await self._apply_reload_in_turn(policies, error, why)

    async def _apply_reload_in_turn(self, policies: PolicySet, error: ConfigError | None, why: str) -> None:
        services = self.services
        if error is not None:
            logger.error(
                "policy reload refused; the previous policies stay in force:\n  %s",
                "\n  ".join(error.problems),
            )
            if services is not None:
                await services.audit.append(
                    "config_error", {"what": "policies", "why": why, "problems": error.problems}
                )
            return
        try:
            controls = self._build_controls(policies) if services is not None else None
        except ConfigError as exc:
            logger.error("policy reload refused (controls):\n  %s", "\n  ".join(exc.problems))
            if services is not None:
                await services.audit.append(
                    "config_error", {"what": "controls", "why": why, "problems": exc.problems}
                )
            return

        def swap_in() -> None:  # with the catalogue (action classes may have changed), nothing awaited
            self.policy = self._access(policies)
            self._policies_in_force = policies
            if controls is not None and services is not None:
                previous, self.controls = self.controls, controls
                if previous is not None:
                    previous.hand_over(controls)  # calls waiting for a slot now keep to the new caps
                self._build_chains(services)

        await self.exposure.reclassify(policies, along_with=swap_in)
        if services is not None:
            await services.audit.append("policy_reload", policy_record(policies, why))
        logger.info("policies reloaded (%s)", why)
        await self.notifier.tools_changed()

    async def set_policy(self, policy: AccessPolicy) -> None:
        """Swap the decision point atomically and tell clients whose tool lists changed."""
        self.policy = policy
        await self.notifier.tools_changed()

    # -- what is exposed (see :mod:`mcp_guard.exposure`) ---------------------------------

    async def _upstream_changed(self, name: str) -> None:
        await self.exposure.listing_changed(name)
        await self.notifier.tools_changed()
        await self.notifier.catalog_changed()

    async def _refresh_pins_periodically(self) -> None:
        """Pick up operator decisions (``mcp-guard tools accept``) made on the pin database."""
        while True:
            await anyio.sleep(PIN_REFRESH_S)
            await self.refresh_pins()

    async def refresh_pins(self) -> None:
        if await self.exposure.refresh_pins():
            await self.notifier.tools_changed()

    @property
    def catalog(self) -> Catalog:
        return self.exposure.catalog

    def lookup_tool(self, name: str) -> tuple[Route, types.Tool, ToolInfo] | None:
        return self.exposure.lookup_tool(name)

    def visible_tools(self, principal: Principal) -> tuple[types.Tool, ...]:
        return self.exposure.visible(principal).tools

    def visible_tool_names(self, principal: Principal) -> frozenset[str]:
        return self.exposure.visible(principal).names

    async def wire_tools(self, tools: Sequence[types.Tool], version: str) -> list[WireTool]:
        """Raises: MCPError — a tool does not fit ``version``'s schema."""
        return await self.exposure.wire_tools(tools, version)

    # -- resources and prompts ----------------------------------------------------------

    def seen_upstreams(self, principal: Principal) -> frozenset[str]:
        """The upstreams whose resources and prompts ``principal`` may list and read: those
        with a tool it may see, and those serving no tools whose bare namespace
        ``<prefix>__`` it may see (so a rule hiding the upstream hides them too)."""
        return self.exposure.visible(principal).upstreams

    async def admit_read(
        self, principal: Principal, session_id: str, method: str, target: str, upstream: str | None
    ) -> str | None:
        """Record a ``resources/read`` or ``prompts/get`` of ``target`` and say where to send it:
        the upstream, or None when there is no such target for this principal (unknown, or
        hidden: both answer alike) or the read cannot be recorded (fail closed)."""
        allowed = upstream is not None and upstream in self.seen_upstreams(principal)
        recorder = self.recorder
        if recorder is None:
            return None
        recorded = await recorder.read(principal, session_id, method, target, upstream, allowed=allowed)
        return upstream if allowed and recorded else None

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
        on_progress: ProgressReporter | None = None,
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
            report_progress=on_progress,
        )
        services, recorder = self.services, self.recorder
        if services is None or recorder is None:  # not running: never forward unaudited
            call.verdict = blocked(
                "audit-unavailable", "the audit log is not open; the call was not forwarded"
            )
            return refusal(call)
        try:
            call.session, call.workflow, call.principal_session = services.sessions.for_call(
                session_id, principal, call.meta
            )
        except SessionMismatch:
            call.verdict = blocked("session-mismatch", "this session belongs to another principal")
            await recorder.decision(call)
            return refusal(call)
        try:
            return await self._decide_and_forward(call, recorder)
        finally:
            if call.admission is not None and not call.forwarded and self.controls is not None:
                with anyio.CancelScope(shield=True):
                    await self.controls.withdraw(call.admission)

    async def _decide_and_forward(self, call: ToolCall, recorder: CallRecorder) -> types.CallToolResult:
        """Raises: UnknownToolError — the tool does not exist or is hidden from this principal."""
        try:
            await self.chain.run(call)
        except UnknownToolError:
            call.verdict = blocked("unknown-tool", "unknown tool")
            await recorder.decision(call)
            raise
        verdict = await recorder.decision(call)
        self._remember(call)
        if not verdict.decision.forwards:
            return refusal(call)
        assert call.route is not None and self.controls is not None
        started = time.perf_counter()
        result = await forward(call, self.upstreams[call.route.upstream], self.controls)
        result = await self.result_chain.run(call, result)
        unsynced = await recorder.durable(call)
        if unsynced is not None:  # fail closed: no result leaves without its decision on disk
            return upstream_failure(
                call,
                "audit-unavailable",
                f"the call was forwarded, but its decision entry could not be made durable ({unsynced}); "
                "its result is withheld",
            )
        recorder.write_outcome(call, result, (time.perf_counter() - started) * 1000)
        return with_decision(result, call)

    def _remember(self, call: ToolCall) -> None:
        """Session history (every call) and the agent's baseline (forwarded calls only)."""
        assert self.services is not None
        record = CallRecord(
            tool=call.tool,
            at=call.received_at,
            upstream=call.route.upstream if call.route else "",
            actions=call.actions,
            decision=call.verdict.decision,
            shape=call.shape or "",
            finding_types=frozenset(f.type for f in call.findings),
            mono=self.services.sessions.now(),  # stamped once: each session would copy it to stamp it
        )
        for session in call.sessions:
            session.record_call(record)
        if call.verdict.decision.forwards:
            self.services.baselines.observe(
                call.principal, call.tool, call.received_at, arguments=call.arguments, shape=call.shape
            )
