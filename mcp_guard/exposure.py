"""What the gateway exposes: the catalogue as policies see it (each exposed tool with what
they know of it), and what each principal sees of it.

The catalogue is worked out afresh whenever it may have changed: an upstream listed its
tools again (each listing first reviewed against the tool pins: only pinned, unchanged,
unpoisoned tools are exposed), an operator decided on a tool pin, the policies were
reloaded (they give action classes). At 10,000 tools that is 60 to 100 ms of pure work,
merging the listings and classifying every tool, so :class:`Exposure` runs
:func:`classified_catalog` in a worker thread and swaps the result in on the event loop:
a call is decided against the old catalogue or the new one, never a half-built one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
from mcp import types

from mcp_guard.audit import AuditUnavailableError
from mcp_guard.long_lived import LongLivedHeap
from mcp_guard.pinning import PinningError
from mcp_guard.pipeline.access import AccessPolicy
from mcp_guard.policy import PolicySet, PolicyStore, ToolInfo
from mcp_guard.principal import Principal
from mcp_guard.services import Services
from mcp_guard.tool_wire import WireForms, WireTool
from mcp_guard.upstreams.catalog import Catalog, Route, build_catalog
from mcp_guard.upstreams.config import UpstreamsFile
from mcp_guard.upstreams.supervisor import Listing, Upstream
from mcp_guard.visibility import Exposed, VisibilityCache, Visible

logger = logging.getLogger(__name__)


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


class Exposure:
    """What the gateway exposes: the upstreams' reviewed tools, classified by the policies
    (:attr:`catalog`, :attr:`tools`), and what each principal sees of them.

    ``access`` gives the access policy in force, ``services`` the gateway's services while
    it runs (None otherwise: no listing is then reviewed, so no tool is exposed).
    """

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        upstreams_file: UpstreamsFile,
        policy_store: PolicyStore | None,
        *,
        access: Callable[[], AccessPolicy],
        services: Callable[[], Services | None],
    ) -> None:
        self._upstreams = upstreams
        self._upstreams_file = upstreams_file
        self._policy_store = policy_store
        self._access = access
        self._services = services
        self.catalog = Catalog()
        self.tools: Exposed = {}
        """The exposed tools by namespaced name (replaced, never changed in place)."""
        self._bare = self._bare_namespaces()
        self._visibility = VisibilityCache()
        self._wire = WireForms()
        self._heap = LongLivedHeap()
        self._rebuilding = anyio.Lock()
        """One catalogue rebuild at a time, so the last one started reads the latest listings."""
        self._allowed: dict[str, tuple[types.Tool, ...]] = {}
        self._reviewing = {name: anyio.Lock() for name in upstreams}
        """One review of an upstream at a time, so the last listing reviewed is the last one exposed."""

    # -- reviewing listings and pins ----------------------------------------------------

    async def listing_changed(self, name: str) -> None:
        """Review upstream ``name``'s listing and rebuild the catalogue with it.

        Raises:
            AuditUnavailableError: a pin event could not be audited (nothing was pinned).
        """
        await self._review_pins(name)
        await self._rebuild()

    async def _review_pins(self, name: str) -> None:
        """Only pinned, unchanged, unpoisoned tools are exposed (rug pulls are quarantined)."""
        async with self._reviewing[name]:
            await self._review_listing(name)

    async def _review_listing(self, name: str) -> None:
        services = self._services()
        tools = self._upstreams[name].listing.tools
        if services is None:
            self._allowed[name] = ()
            return
        try:  # an audit failure propagates: nothing was pinned, and the review runs again later
            review = await services.pins.review(name, tools, deliver=self._record_pin_event)
        except PinningError as exc:
            logger.error("upstream %s: tool pins unavailable (%s); exposing none of its tools", name, exc)
            self._allowed[name] = ()
            return
        for quarantined in review.quarantined:
            logger.warning(
                "upstream %s: tool %r quarantined (%s); see `mcp-guard tools diff %s %s`",
                name,
                quarantined.name,
                quarantined.reason,
                name,
                quarantined.name,
            )
        self._allowed[name] = review.allowed

    async def refresh_pins(self) -> bool:
        """Pick up operator decisions (``mcp-guard tools accept``) made on the pin database;
        True when the catalogue was rebuilt with them."""
        services = self._services()
        if services is None:
            return False
        try:
            refreshed = await services.pins.refresh(deliver=self._record_pin_event)
        except (PinningError, AuditUnavailableError) as exc:
            # Nothing was claimed: the operator's decisions take effect, audited, at a later refresh.
            logger.error("tool pins not refreshed: %s; retrying at the next refresh", exc)
            return False
        if not refreshed.upstreams:
            return False
        for name in refreshed.upstreams & self._upstreams.keys():
            try:
                await self._review_pins(name)
            except AuditUnavailableError as exc:  # nothing pinned; its tools stay as they were
                logger.error("upstream %s: tool pins not reviewed: %s", name, exc)
        await self._rebuild()
        return True

    async def _record_pin_event(self, event: dict[str, Any]) -> None:
        """Append a pin review's or an operator's decision record to the audit log."""
        services = self._services()
        assert services is not None
        await services.audit.append("tool_pin", event)

    # -- rebuilding the catalogue -------------------------------------------------------

    async def reclassify(self, policies: PolicySet, along_with: Callable[[], None]) -> None:
        """Rebuild the catalogue with ``policies``' action classes and swap it in together
        with what ``along_with`` swaps (the policies themselves), nothing awaited in between:
        a call is decided by the old set or the new one."""
        async with self._rebuilding:
            catalog, tools = await self._classified_catalog(policies)
            along_with()
            self._expose(catalog, tools)

    async def _rebuild(self) -> None:
        """Rebuild the catalogue from the upstreams' reviewed listings and swap it in."""
        async with self._rebuilding:
            policies = self._policy_store.current() if self._policy_store else None
            self._expose(*await self._classified_catalog(policies))

    async def _classified_catalog(self, policies: PolicySet | None) -> tuple[Catalog, Exposed]:
        """The catalogue of the upstreams' reviewed listings classified by ``policies``,
        worked out in a worker thread (:func:`classified_catalog`). Changes nothing:
        :meth:`_expose` swaps it in."""
        listings = {
            n: Listing(self._allowed.get(n, ()), u.listing.resources, u.listing.templates, u.listing.prompts)
            for n, u in self._upstreams.items()
        }
        prefixes = {n: self._upstreams_file.prefix_of(n) for n in self._upstreams}
        environments = {n: u.config.environment for n, u in self._upstreams.items()}
        return await anyio.to_thread.run_sync(
            classified_catalog, listings, prefixes, self.catalog, policies, environments
        )

    def _expose(self, catalog: Catalog, tools: Exposed) -> None:
        """Swap in a catalogue and what policies know of its tools, then keep them (and
        everything else alive now) out of full garbage collections."""
        self.catalog, self.tools = catalog, tools
        self._wire.retain(tool for _, tool, _ in tools.values())
        self._bare = self._bare_namespaces()
        self._heap.settle()

    def _bare_namespaces(self) -> tuple[ToolInfo, ...]:
        """The bare namespace ``<prefix>__`` of each upstream serving no tools (what decides
        whether a principal sees its resources and prompts)."""
        with_tools = {route.upstream for route, _, _ in self.tools.values()}
        return tuple(
            ToolInfo(name=f"{self._upstreams_file.prefix_of(upstream)}__", upstream=upstream)
            for upstream in self._upstreams.keys() - with_tools
        )

    # -- what is exposed ----------------------------------------------------------------

    def lookup_tool(self, name: str) -> tuple[Route, types.Tool, ToolInfo] | None:
        """Where an exposed tool lives, its definition and what policies know of it."""
        return self.tools.get(name)

    def visible(self, principal: Principal) -> Visible:
        """What ``principal`` sees of the current catalogue under the current policy (kept
        until either is replaced: see :mod:`mcp_guard.visibility`)."""
        return self._visibility.of(principal, self.tools, self._bare, self._access())

    async def worked_out_tool_names(self, principal: Principal) -> frozenset[str]:
        """The names of the tools ``principal`` sees, worked out a turn at a time when not kept."""
        seen = await self._visibility.worked_out(principal, self.tools, self._bare, self._access())
        return seen.names

    async def wire_tools(self, tools: Sequence[types.Tool], version: str) -> list[WireTool]:
        """``tools`` of the current catalogue as the SDK shapes them for protocol ``version``
        (each shaped once, in a worker thread, until it changes: see :mod:`mcp_guard.tool_wire`).

        Raises:
            MCPError: a tool does not fit ``version``'s schema.
        """
        shaped = self._wire.shaped
        forms = await self._wire.of_in_worker(tools, version)
        if self._wire.shaped != shaped:
            self._heap.settle()  # the new shapes live as long as their tools
        return forms
