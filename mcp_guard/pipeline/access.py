"""The single decision point: one object answers both "may this principal see the tool?"
(``tools/list``) and "what happens to this call?" (``tools/call``), so the list a
principal sees and the calls it may make can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Protocol

import anyio
from pydantic import BaseModel, ConfigDict, Field

from mcp_guard.decision import ALLOWED, Decision, Verdict
from mcp_guard.errors import UnknownToolError
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.policy import PolicyRequest, PolicySet, ToolInfo
from mcp_guard.principal import Principal


class AccessPolicy(Protocol):
    def visible(self, principal: Principal, tool: ToolInfo, at: datetime | None = None) -> bool:
        """Whether ``principal`` may see ``tool``, now or at the moment ``at``."""
        ...

    def listing_moment(self) -> datetime | None:
        """The moment to ask :meth:`visible` at for a listing that may be kept and reused:
        ``None`` when no answer of :meth:`visible` can change with the clock alone."""
        ...

    async def decide(self, call: ToolCall, tool: ToolInfo) -> Verdict: ...


class AllowAll:
    """Every principal sees and may call every tool (only for trusted local use)."""

    def visible(self, principal: Principal, tool: ToolInfo, at: datetime | None = None) -> bool:
        return True

    def listing_moment(self) -> datetime | None:
        return None

    async def decide(self, call: ToolCall, tool: ToolInfo) -> Verdict:
        return ALLOWED


class Grant(BaseModel):
    """Tools (globs on namespaced names) granted to principals with any of these attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: list[str] = Field(default_factory=list)
    agents: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    tools: list[str] = Field(min_length=1)

    def applies_to(self, principal: Principal) -> bool:
        if not (self.roles or self.agents or self.users or self.teams):
            return True
        return bool(
            principal.roles.intersection(self.roles)
            or principal.teams.intersection(self.teams)
            or (principal.agent is not None and principal.agent in self.agents)
            or principal.user in self.users
        )

    def covers(self, tool: str) -> bool:
        return any(fnmatchcase(tool, pattern) for pattern in self.tools)


class AllowlistPolicy:
    """A principal sees and may call a tool when some grant applies to it and covers the tool."""

    def __init__(self, grants: Sequence[Grant]) -> None:
        self.grants = tuple(grants)

    def visible(self, principal: Principal, tool: ToolInfo, at: datetime | None = None) -> bool:
        return any(g.applies_to(principal) and g.covers(tool.name) for g in self.grants)

    def listing_moment(self) -> datetime | None:
        return None

    async def decide(self, call: ToolCall, tool: ToolInfo) -> Verdict:
        if self.visible(call.principal, tool):
            return ALLOWED
        return Verdict(decision=Decision.BLOCK, rules=("allowlist",), reason="not granted")


class PolicyAccess:
    """The policy folder as the decision point. The clock is an input (tests pin it)."""

    def __init__(self, policies: PolicySet, clock: Callable[[], datetime] | None = None) -> None:
        self.policies = policies
        self.clock = clock or (lambda: datetime.now(UTC))

    def visible(self, principal: Principal, tool: ToolInfo, at: datetime | None = None) -> bool:
        return self.policies.visible(principal, tool, at or self.clock())

    def listing_moment(self) -> datetime | None:
        """Now, cut to the minute, when a HIDE rule reads the clock: time windows are whole
        minutes of local time, and every zone's offset today is a whole number of
        minutes, so an answer at the minute's start holds until its end."""
        if not self.policies.visibility_reads_clock:
            return None
        return self.clock().astimezone(UTC).replace(second=0, microsecond=0)

    async def decide(self, call: ToolCall, tool: ToolInfo) -> Verdict:
        """The enforced verdict; the full result (shadow, matched rules, approval spec) goes on ``call``.

        External engines (Rego) are asked in a worker thread: each waits on a child
        process, and must not hold the event loop while it does.

        Raises:
            UnknownToolError: a rule hides the tool from this principal.
        """
        policies = self.policies
        req = PolicyRequest(
            principal=call.principal,
            tool=tool,
            now=call.received_at,
            arguments=call.arguments,
            findings=tuple(call.findings),
            risk=call.risk,
            risk_factors=call.risk_factors,
            **({"history": call.session} if call.session is not None else {}),
            **({"principal_history": call.principal_session} if call.principal_session is not None else {}),
        )
        outcomes = await anyio.to_thread.run_sync(policies.ask_engines, req) if policies.engines else None
        result = policies.evaluate(req, outcomes)
        call.policy = result
        if result.hidden:
            raise UnknownToolError(call.tool)
        return result.verdict
