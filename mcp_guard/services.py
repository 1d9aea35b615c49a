"""The gateway's stateful services, opened together and closed together.

Everything that owns a file or a background task (audit log, approvals, tool pins,
risk baselines, persisted budget counters) is opened here in one async context, so
the gateway has exactly one owner for each and shuts them down in reverse order.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from mcp_guard.approvals import ApprovalService
from mcp_guard.audit import AuditLog, SqliteAuditLog
from mcp_guard.config.settings import GatewaySettings
from mcp_guard.controls import (
    ControlsConfig,
    ControlState,
    RawSpec,
    open_embedded_state,
    parse_limit_specs,
)
from mcp_guard.inspection import Inspector
from mcp_guard.pinning import PinStore
from mcp_guard.pipeline.results import RESULT_CATEGORIES
from mcp_guard.risk import BaselineStore, RiskScorer, open_baseline_store
from mcp_guard.sessions import SessionStore
from mcp_guard.upstreams.config import UpstreamsFile

logger = logging.getLogger(__name__)


@dataclass
class Services:
    audit: AuditLog
    approvals: ApprovalService
    pins: PinStore
    baselines: BaselineStore
    control_state: ControlState
    sessions: SessionStore
    scorer: RiskScorer
    argument_inspector: Inspector
    result_inspector: Inspector


@asynccontextmanager
async def open_services(settings: GatewaySettings) -> AsyncIterator[Services]:
    """Open every service named by ``settings``.

    Raises:
        AuditUnavailableError: the audit log cannot be opened (nothing may run unaudited).
        OSError / sqlite3.Error: another state file cannot be opened.
    """
    async with AsyncExitStack() as stack:
        audit = await stack.enter_async_context(SqliteAuditLog.open(settings.audit))
        approvals = await stack.enter_async_context(ApprovalService.open(settings.approvals, audit))
        pins = await stack.enter_async_context(PinStore.open(settings.pinning))
        baselines = await stack.enter_async_context(
            open_baseline_store(settings.state_path("baselines.db"), settings.risk.baseline)
        )
        state = await stack.enter_async_context(open_embedded_state(settings.state_path("controls.db")))
        result_config = settings.inspection.model_copy(
            update={"categories": settings.inspection.categories & RESULT_CATEGORIES}
        )
        yield Services(
            audit=audit,
            approvals=approvals,
            pins=pins,
            baselines=baselines,
            control_state=state,
            sessions=SessionStore(settings.sessions),
            scorer=RiskScorer(settings.risk, baselines),
            argument_inspector=Inspector(settings.inspection),
            result_inspector=Inspector(result_config),
        )


def controls_config(
    settings: GatewaySettings, upstreams: UpstreamsFile, policy_specs: Sequence[RawSpec]
) -> ControlsConfig:
    """Controls from the policy files and ``mcp-guard.yaml``, with each upstream's
    ``call_timeout_s`` as the least specific timeout for its tools.

    Raises:
        ConfigError: a control is invalid (``file:line: ...``).
    """
    implicit = [
        RawSpec(
            "upstreams.yaml",
            0,
            "timeouts",
            [{"upstreams": [name], "seconds": up.call_timeout_s} for name, up in upstreams.enabled().items()],
        )
    ]
    return parse_limit_specs([*implicit, *policy_specs, *settings.control_specs()])
