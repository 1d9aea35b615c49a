"""The aggregated catalog: every upstream's tools, resources and prompts, namespaced.

Tools and prompts are exposed as ``<prefix>__<name>`` (the prefix defaults to the
upstream's name; an empty prefix exposes the original name). Resource URIs are kept
as they are and routed by exact URI, then by resource-template prefix. The catalog
is an immutable snapshot, rebuilt whenever an upstream's listing changes; a rebuild
keeps the exposed definition (the same object) of every tool whose upstream listed the
same definition object again, so what is derived from it can be kept too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from mcp import types

from mcp_guard.upstreams.supervisor import Listing

logger = logging.getLogger(__name__)

SEPARATOR = "__"
MAX_EXPOSED_NAME = 128


def exposed_name(prefix: str, name: str) -> str:
    return f"{prefix}{SEPARATOR}{name}" if prefix else name


@dataclass(frozen=True)
class Route:
    """Where an exposed tool or prompt really lives."""

    upstream: str
    original: str


@dataclass(frozen=True)
class Catalog:
    tools: Mapping[str, tuple[Route, types.Tool]] = field(default_factory=dict)
    prompts: Mapping[str, tuple[Route, types.Prompt]] = field(default_factory=dict)
    resources: Mapping[str, tuple[str, types.Resource]] = field(default_factory=dict)
    templates: tuple[tuple[str, types.ResourceTemplate], ...] = ()
    originals: Mapping[str, types.Tool] = field(default_factory=dict)
    """Each exposed tool's definition as its upstream listed it (that very object)."""

    def resource_upstream(self, uri: str) -> str | None:
        """The upstream serving ``uri``: an exact listed URI, else the longest template prefix."""
        if uri in self.resources:
            return self.resources[uri][0]
        best: tuple[int, str] | None = None
        for upstream, template in self.templates:
            literal = template.uri_template.split("{", 1)[0]
            if literal and uri.startswith(literal) and (best is None or len(literal) > best[0]):
                best = (len(literal), upstream)
        return best[1] if best else None


def build_catalog(
    listings: Mapping[str, Listing], prefixes: Mapping[str, str], previous: Catalog | None = None
) -> Catalog:
    """Merge listings (in upstream order). A name clash keeps the first and logs both upstreams.

    A tool listed by the same definition object as in ``previous`` keeps its exposed entry.
    """
    tools: dict[str, tuple[Route, types.Tool]] = {}
    originals: dict[str, types.Tool] = {}
    prompts: dict[str, tuple[Route, types.Prompt]] = {}
    resources: dict[str, tuple[str, types.Resource]] = {}
    templates: list[tuple[str, types.ResourceTemplate]] = []
    for upstream, listing in listings.items():
        prefix = prefixes[upstream]
        for tool in listing.tools:
            name = exposed_name(prefix, tool.name)
            if _admit(name, tools, upstream, "tool"):
                if previous is not None and previous.originals.get(name) is tool:
                    tools[name] = previous.tools[name]
                else:
                    tools[name] = (Route(upstream, tool.name), tool.model_copy(update={"name": name}))
                originals[name] = tool
        for prompt in listing.prompts:
            name = exposed_name(prefix, prompt.name)
            if _admit(name, prompts, upstream, "prompt"):
                prompts[name] = (Route(upstream, prompt.name), prompt.model_copy(update={"name": name}))
        for resource in listing.resources:
            uri = str(resource.uri)
            if uri in resources:
                logger.error(
                    "resource %s is offered by upstreams '%s' and '%s'; keeping '%s'",
                    uri,
                    resources[uri][0],
                    upstream,
                    resources[uri][0],
                )
                continue
            resources[uri] = (
                upstream,
                resource.model_copy(update={"name": exposed_name(prefix, resource.name)}),
            )
        templates.extend(
            (upstream, t.model_copy(update={"name": exposed_name(prefix, t.name)})) for t in listing.templates
        )
    return Catalog(tools, prompts, resources, tuple(templates), originals)


def _admit(name: str, taken: Mapping[str, tuple[Route, object]], upstream: str, kind: str) -> bool:
    if len(name) > MAX_EXPOSED_NAME:
        logger.warning(
            "upstream %s: skipping %s %r: namespaced name longer than %d characters",
            upstream,
            kind,
            name,
            MAX_EXPOSED_NAME,
        )
        return False
    if name in taken:
        logger.error(
            "%s name %r is offered by upstreams '%s' and '%s'; keeping '%s' (give one a prefix)",
            kind,
            name,
            taken[name][0].upstream,
            upstream,
            taken[name][0].upstream,
        )
        return False
    return True
