"""What each principal sees: its tools, and the upstreams whose resources and prompts it may use.

Working it out asks the access policy about every tool of the catalogue: at 10,000 tools,
tens of milliseconds of the event loop, which every other client waits through. It used
to be done for every page of every ``tools/list`` (a listing of ten pages asked about
every tool ten times) and for every resource read. :class:`VisibilityCache` keeps each
principal's answer instead, for as long as it holds:

- until the catalogue or the access policy is replaced: the gateway swaps both, never
  changes them in place, so the cache compares them by identity on every lookup and a
  listing asked for after a reload or an upstream change is always worked out afresh;
- when a HIDE rule reads the clock, until the minute ends (every answer is dropped when
  the policy's :meth:`~mcp_guard.pipeline.access.AccessPolicy.listing_moment` moves on).

At most ``max_principals`` answers are kept, least recently used dropped first; each
holds one reference per tool it shows (about 80 kB at 10,000 tools).

:meth:`VisibilityCache.worked_out` works an answer out :data:`TOOLS_PER_TURN` tools at a
time, letting other tasks have the event loop in between (what telling every client of
a change does: a principal's first answer under a new policy set takes 20 to 100 ms at
10,000 tools).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import anyio
from mcp import types

from mcp_guard.pipeline.access import AccessPolicy
from mcp_guard.policy import ToolInfo
from mcp_guard.principal import Principal
from mcp_guard.upstreams.catalog import Route

MAX_PRINCIPALS = 256
TOOLS_PER_TURN = 250
"""Tools asked about between two turns of the event loop by :meth:`VisibilityCache.worked_out`."""
Exposed = Mapping[str, tuple[Route, types.Tool, ToolInfo]]
"""The catalogue's tools by namespaced name: where each lives, its definition, what policies know of it."""


@dataclass(frozen=True, eq=False)
class Visible:
    """What one principal sees of one catalogue: its tools in catalogue order, and the
    upstreams whose resources and prompts it may list and read."""

    tools: tuple[types.Tool, ...]
    upstreams: frozenset[str]

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(tool.name for tool in self.tools)


def visible_to(
    principal: Principal,
    exposed: Iterable[tuple[Route, types.Tool, ToolInfo]],
    bare: Iterable[ToolInfo],
    policy: AccessPolicy,
    at: datetime | None = None,
) -> Visible:
    """Ask ``policy`` about every tool of ``exposed`` (at the moment ``at``).

    An upstream is seen when ``principal`` may see one of its tools, or, for an upstream
    serving no tools, its bare namespace in ``bare`` (the tool name ``<prefix>__``), so
    a rule hiding an upstream hides its resources and prompts too.
    """
    shown = [(route, tool) for route, tool, info in exposed if policy.visible(principal, info, at)]
    return _visible(principal, shown, bare, policy, at)


async def visible_to_in_turns(
    principal: Principal,
    exposed: Sequence[tuple[Route, types.Tool, ToolInfo]],
    bare: Iterable[ToolInfo],
    policy: AccessPolicy,
    at: datetime | None = None,
) -> Visible:
    """:func:`visible_to`, :data:`TOOLS_PER_TURN` tools between two turns of the event loop."""
    shown: list[tuple[Route, types.Tool]] = []
    for start in range(0, len(exposed), TOOLS_PER_TURN):
        await anyio.lowlevel.checkpoint()
        chunk = exposed[start : start + TOOLS_PER_TURN]
        shown += [(route, tool) for route, tool, info in chunk if policy.visible(principal, info, at)]
    return _visible(principal, shown, bare, policy, at)


def _visible(
    principal: Principal,
    shown: list[tuple[Route, types.Tool]],
    bare: Iterable[ToolInfo],
    policy: AccessPolicy,
    at: datetime | None,
) -> Visible:
    upstreams = {route.upstream for route, _ in shown}
    upstreams.update(info.upstream for info in bare if policy.visible(principal, info, at))
    return Visible(tuple(tool for _, tool in shown), frozenset(upstreams))


class VisibilityCache:
    """Each principal's :class:`Visible` of the current catalogue under the current policy.

    Not thread-safe: use it from one event loop.
    """

    def __init__(self, max_principals: int = MAX_PRINCIPALS) -> None:
        if max_principals < 1:
            raise ValueError(f"max_principals must be at least 1, not {max_principals}")
        self.max_principals = max_principals
        self._exposed: Exposed | None = None
        self._policy: AccessPolicy | None = None
        self._moment: datetime | None = None
        self._kept: OrderedDict[Principal, Visible] = OrderedDict()
        self.computed = 0
        """Answers worked out (not found kept)."""

    def of(
        self, principal: Principal, exposed: Exposed, bare: Iterable[ToolInfo], policy: AccessPolicy
    ) -> Visible:
        """What ``principal`` sees: kept, or worked out now (and kept).

        ``bare`` are the bare namespaces of the upstreams of ``exposed`` that serve no tools.
        """
        kept = self._kept_answer(principal, exposed, policy)
        if kept is not None:
            return kept
        seen = visible_to(principal, exposed.values(), bare, policy, self._moment)
        self.computed += 1
        self._keep(principal, seen)
        return seen

    async def worked_out(
        self, principal: Principal, exposed: Exposed, bare: Iterable[ToolInfo], policy: AccessPolicy
    ) -> Visible:
        """:meth:`of`, an answer not kept worked out a turn at a time (:func:`visible_to_in_turns`).

        It is kept only if ``exposed`` and ``policy`` are still the current ones when it is
        done (the catalogue or the policy may be replaced in between).
        """
        kept = self._kept_answer(principal, exposed, policy)
        if kept is not None:
            return kept
        moment = self._moment
        seen = await visible_to_in_turns(principal, list(exposed.values()), bare, policy, moment)
        self.computed += 1
        if exposed is self._exposed and policy is self._policy and moment == self._moment:
            self._keep(principal, seen)
        return seen

    def _kept_answer(self, principal: Principal, exposed: Exposed, policy: AccessPolicy) -> Visible | None:
        """``principal``'s kept answer, if any; every answer is dropped first when ``exposed``,
        ``policy`` or the policy's listing moment is not the one they were worked out for."""
        moment = policy.listing_moment()
        if exposed is not self._exposed or policy is not self._policy or moment != self._moment:
            self._kept.clear()
            self._exposed, self._policy, self._moment = exposed, policy, moment
        kept = self._kept.get(principal)
        if kept is not None:
            self._kept.move_to_end(principal)
        return kept

    def _keep(self, principal: Principal, seen: Visible) -> None:
        self._kept[principal] = seen
        while len(self._kept) > self.max_principals:
            self._kept.popitem(last=False)
