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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from mcp import types

from mcp_guard.pipeline.access import AccessPolicy
from mcp_guard.policy import ToolInfo
from mcp_guard.principal import Principal
from mcp_guard.upstreams.catalog import Route

MAX_PRINCIPALS = 256
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
    tools: list[types.Tool] = []
    upstreams: set[str] = set()
    for route, tool, info in exposed:
        if policy.visible(principal, info, at):
            tools.append(tool)
            upstreams.add(route.upstream)
    upstreams.update(info.upstream for info in bare if policy.visible(principal, info, at))
    return Visible(tuple(tools), frozenset(upstreams))


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
        moment = policy.listing_moment()
        if exposed is not self._exposed or policy is not self._policy or moment != self._moment:
            self._kept.clear()
            self._exposed, self._policy, self._moment = exposed, policy, moment
        kept = self._kept.get(principal)
        if kept is not None:
            self._kept.move_to_end(principal)
            return kept
        seen = visible_to(principal, exposed.values(), bare, policy, moment)
        self.computed += 1
        self._kept[principal] = seen
        while len(self._kept) > self.max_principals:
            self._kept.popitem(last=False)
        return seen
