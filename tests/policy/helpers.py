"""Helpers for driving the policy engine through its public API."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_guard.findings import Finding, Severity
from mcp_guard.policy import PolicyRequest, PolicySet, ToolInfo, load_policy_dir
from mcp_guard.policy.types import NO_HISTORY, SessionHistory
from mcp_guard.principal import Principal

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load(folder: Path, text: str, name: str = "p.yaml") -> PolicySet:
    write(folder, name, text)
    return load_policy_dir(folder)


def who(user: str = "u", **kw: Any) -> Principal:
    for key in ("roles", "teams", "scopes"):
        if key in kw:
            kw[key] = frozenset(kw[key])
    return Principal(user=user, **kw)


def finding(kind: str, category: str = "pii", severity: str = "high", path: str = "$.args") -> Finding:
    return Finding(type=kind, category=category, severity=Severity(severity), path=path)


def request(
    tool: str = "bank__refund",
    principal: Principal | None = None,
    *,
    args: Mapping[str, Any] | None = None,
    actions: Sequence[str] = (),
    environment: str | None = None,
    findings: Sequence[Finding] = (),
    risk: float | None = None,
    factors: Mapping[str, float] | None = None,
    now: datetime = MONDAY_NOON,
    history: SessionHistory = NO_HISTORY,
) -> PolicyRequest:
    return PolicyRequest(
        principal=principal or who(),
        tool=ToolInfo(tool, actions=frozenset(actions), environment=environment),
        now=now,
        arguments=args or {},
        findings=findings,
        risk=risk,
        risk_factors=factors or {},
        history=history,
    )
