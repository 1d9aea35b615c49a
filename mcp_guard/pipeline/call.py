"""The state of one governed ``tools/call`` as it moves through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcp import types

from mcp_guard.decision import ALLOWED, Verdict
from mcp_guard.findings import Finding
from mcp_guard.principal import Principal
from mcp_guard.upstreams.catalog import Route


@dataclass
class ToolCall:
    """Everything known about one call. Stages read it and add to it.

    ``arguments`` are what the client sent; ``forward_arguments`` what will be
    forwarded (a stage may redact them). ``verdict`` is the decision so far.
    """

    principal: Principal
    session_id: str
    tool: str
    arguments: dict[str, Any]
    received_at: datetime
    meta: dict[str, Any] | None = None
    client_info: dict[str, Any] | None = None
    route: Route | None = None
    definition: types.Tool | None = None
    actions: frozenset[str] = frozenset()
    forward_arguments: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    risk: float | None = None
    risk_factors: dict[str, float] = field(default_factory=dict)
    verdict: Verdict = ALLOWED
    audit_id: str | None = None
    approval_id: str | None = None
    timings_us: dict[str, float] = field(default_factory=dict)
