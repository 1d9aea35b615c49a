"""Helpers shared by the controls tests: config from dicts, principals, instants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcp_guard.controls import ControlCall, Controls, ControlsConfig, Instant, RawSpec, parse_limit_specs
from mcp_guard.controls.state import ControlState
from mcp_guard.principal import Principal

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def config(**kinds: list[dict[str, Any]]) -> ControlsConfig:
    specs = [
        RawSpec("policies/controls.yaml", 10 * i + 1, kind, item)
        for i, (kind, items) in enumerate(kinds.items())
        for item in items
    ]
    return parse_limit_specs(specs)


def controls(store: ControlState | None = None, **kinds: list[dict[str, Any]]) -> Controls:
    return Controls(config(**kinds), store)


def who(user: str = "alice", agent: str | None = "bot", **kw: Any) -> Principal:
    return Principal(user=user, agent=agent, **kw)


def call(
    tool: str = "bank__pay",
    principal: Principal | None = None,
    arguments: dict[str, Any] | None = None,
    upstream: str | None = None,
    cost: float | None = None,
) -> ControlCall:
    return ControlCall(
        principal=principal or who(),
        tool=tool,
        upstream=upstream or tool.split("__", maxsplit=1)[0],
        arguments=arguments or {},
        cost=cost,
    )


def at(mono: float, wall: datetime = NOON) -> Instant:
    return Instant(mono, wall)
