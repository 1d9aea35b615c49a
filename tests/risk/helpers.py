"""Builders for risk and session tests: a hand-advanced clock, principals, calls, warm baselines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_guard.findings import Finding, Severity
from mcp_guard.principal import Principal
from mcp_guard.risk import BaselineStore, RiskConfig, RiskInput, RiskScorer
from mcp_guard.sessions import Session, SessionConfig, SessionStore

ALICE = Principal(user="alice", agent="invoice-bot")
BOB = Principal(user="bob", agent="invoice-bot")
MONDAY_10 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
"""Monday 16 November 2026, 10:00 UTC: inside default business hours."""
SUNDAY_03 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
"""Sunday 22 November 2026, 03:00 UTC: outside default business hours."""


class FakeClock:
    """A monotonic clock advanced by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def finding(type_: str, category: str, severity: Severity = Severity.HIGH, path: str = "$.note") -> Finding:
    return Finding(type=type_, category=category, severity=severity, path=path)


def call(
    tool: str = "crm__get_customer",
    actions: Iterable[str] = ("read",),
    *,
    environment: str | None = "staging",
    arguments: Mapping[str, Any] | None = None,
    findings: Sequence[Finding] = (),
    session: Session | None = None,
    workflow: Session | None = None,
    principal_session: Session | None = None,
    now: datetime = MONDAY_10,
    principal: Principal = ALICE,
) -> RiskInput:
    return RiskInput(
        principal=principal,
        tool=tool,
        upstream=tool.split("__", 1)[0],
        actions=frozenset(actions),
        environment=environment,
        arguments=arguments if arguments is not None else {"id": "c-1"},
        findings=findings,
        session=session,
        now=now,
        workflow=workflow,
        principal_session=principal_session,
    )


def scorer(config: RiskConfig | None = None, baselines: BaselineStore | None = None) -> RiskScorer:
    config = config or RiskConfig()
    return RiskScorer(config, baselines if baselines is not None else BaselineStore(config.baseline))


def sessions(clock: FakeClock | None = None, **config: Any) -> SessionStore:
    return SessionStore(SessionConfig(**config), clock=clock or FakeClock())


def warm_up(
    baselines: BaselineStore,
    principal: Principal = ALICE,
    *,
    calls: int = 200,
    tools: Sequence[str] = ("crm__get_customer", "crm__update_customer"),
    arguments: Mapping[str, Any] | None = None,
    start: datetime = MONDAY_10 - timedelta(days=7),
) -> None:
    """Observe ``calls`` calls spread over weekday working hours (09:00-17:00 UTC) of the week before."""
    args = arguments if arguments is not None else {"id": "c-1"}
    n = 0
    day = 0
    while n < calls:
        base = start.replace(hour=9, minute=0) + timedelta(days=day)
        day += 1
        if base.weekday() >= 5:
            continue
        for minute in range(0, 8 * 60, 8 * 60 * 5 // max(1, calls)):
            if n >= calls:
                break
            baselines.observe(
                principal, tools[n % len(tools)], base + timedelta(minutes=minute), arguments=args
            )
            n += 1
