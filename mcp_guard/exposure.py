"""The catalogue as policies see it: each exposed tool with what they know of it.

Worked out afresh whenever the catalogue may have changed: an upstream listed its tools
again, an operator decided on a tool pin, the policies were reloaded (they give action
classes). At 10,000 tools that is 60 to 100 ms of pure work, merging the listings and
classifying every tool, so the gateway runs :func:`classified_catalog` in a worker
thread and swaps the result in on the event loop: a call is decided against the old
catalogue or the new one, never a half-built one.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcp import types

from mcp_guard.policy import PolicySet, ToolInfo
from mcp_guard.upstreams.catalog import Catalog, Route, build_catalog
from mcp_guard.upstreams.supervisor import Listing
from mcp_guard.visibility import Exposed


def classified_catalog(
    listings: Mapping[str, Listing],
    prefixes: Mapping[str, str],
    previous: Catalog,
    policies: PolicySet | None,
    environments: Mapping[str, str | None],
) -> tuple[Catalog, Exposed]:
    """The catalogue of ``listings`` (see :func:`build_catalog`), each tool classified by
    ``policies`` (none: no action classes) in the environment of its upstream."""
    catalog = build_catalog(listings, prefixes, previous)
    exposed = {
        name: (route, tool, tool_info(name, route, tool, policies, environments.get(route.upstream)))
        for name, (route, tool) in catalog.tools.items()
    }
    return catalog, exposed


def tool_info(
    name: str, route: Route, tool: types.Tool, policies: PolicySet | None, environment: str | None
) -> ToolInfo:
    """What policies know of the exposed tool ``name``."""
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return ToolInfo(
        name=name,
        upstream=route.upstream,
        actions=policies.classify(name, annotations) if policies is not None else frozenset(),
        environment=environment,
        annotations=annotations,
    )
