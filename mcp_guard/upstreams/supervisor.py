"""One supervisor per upstream: connect, list, watch for changes, reconnect with backoff.

Each :class:`Upstream` is owned by exactly one task (its :meth:`Upstream.run`), which
enters and exits the transport and session (anyio requires both in the same task).
Other tasks only send requests through the live session.

While an upstream is down its last known tools stay listed (tool lists do not flap
during a restart), and calls to them fail at once with an error naming the upstream,
the reason and when the next reconnect attempt is due.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, cast

import anyio
from mcp import types
from mcp.client.session import IncomingMessage
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from mcp_guard.errors import UpstreamUnavailableError
from mcp_guard.upstreams.config import UpstreamConfig
from mcp_guard.upstreams.connect import Connection, connect
from mcp_guard.upstreams.raw_http_calls import SessionLostError
from mcp_guard.upstreams.reaper import Reaper
from mcp_guard.upstreams.tooldefs import ToolLimits, json_size, valid_items, valid_tools

logger = logging.getLogger(__name__)

ProgressCallback = ProgressFnT
T = TypeVar("T")
MAX_PAGES = 100
"""Upper bound on pagination of one listing: a hostile upstream cannot loop us forever."""


class _Budget:
    """What is left of one listing's ``max_listing_items`` and ``max_listing_bytes``."""

    def __init__(self, config: UpstreamConfig) -> None:
        self._config = config
        self._items = config.max_listing_items
        self._bytes = config.max_listing_bytes

    def take(self, page: list[Any], into: list[Any]) -> str | None:
        """Move the items of ``page`` that fit into ``into``; at the first that does not, name its limit."""
        for item in page:
            if self._items == 0:
                return f"{self._config.max_listing_items} items (max_listing_items)"
            self._bytes -= json_size(item)
            if self._bytes < 0:
                return f"{self._config.max_listing_bytes} bytes (max_listing_bytes)"
            self._items -= 1
            into.append(item)
        return None


class Status(StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    DOWN = "down"


@dataclass(frozen=True)
class Listing:
    """What an upstream offers, as last listed."""

    tools: tuple[types.Tool, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    templates: tuple[types.ResourceTemplate, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``base * 2**attempt`` capped, times a factor in [0.5, 1]."""

    base_s: float = 0.5
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 16))
        return ceiling * (0.5 + self.rng.random() / 2)


class Upstream:
    """A supervised connection to one upstream MCP server."""

    def __init__(
        self,
        name: str,
        config: UpstreamConfig,
        on_change: Callable[[str], Awaitable[None]],
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.listing = Listing()
        self.status = Status.CONNECTING
        self.last_error: str | None = None
        self.next_attempt_at: float | None = None
        self.server_info: types.Implementation | None = None
        self.connections = 0
        """How many times the upstream became ready (1 + reconnects)."""
        self.changed = anyio.Event()
        """Set (and replaced) every time status or listing changes; tests and operators wait on it."""
        self._on_change = on_change
        self._backoff = backoff or Backoff()
        self._conn: Connection | None = None
        self._refresh = anyio.Event()

    # -- supervision -------------------------------------------------------------------

    async def run(self, reaper: Reaper | None = None) -> None:
        """Keep the upstream connected until cancelled. Never raises except on cancellation.

        ``reaper`` is told of every process started for a stdio upstream.
        """
        attempt = 0
        while True:
            self._set_status(Status.CONNECTING)
            try:
                self.last_error = await self._serve_one_connection(reaper) or "the connection closed"
                attempt = 0
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:  # supervisor boundary: one upstream never takes the gateway down
                self.last_error = _describe(exc)
            delay = self._backoff.delay(attempt)
            logger.warning("upstream %s: %s; reconnecting in %.1fs", self.name, self.last_error, delay)
            attempt += 1
            self.next_attempt_at = time.monotonic() + delay
            self._set_status(Status.DOWN)
            await anyio.sleep(delay)

    async def _serve_one_connection(self, reaper: Reaper | None) -> str | None:
        """Connect, list and serve until the connection closes; returns why, when the gateway closed it.

        Raises:
            TimeoutError: connecting, initializing or listing took longer than allowed.
        """
        with anyio.CancelScope(deadline=anyio.current_time() + self.config.connect_timeout_s) as scope:
            async with connect(self.name, self.config, self._on_message, reaper) as conn:
                self.server_info = conn.initialize.server_info
                self.listing = await self._list(conn)
                scope.deadline = math.inf
                self._conn = conn
                self.last_error = None
                self.next_attempt_at = None
                try:
                    await self._on_change(self.name)  # the catalog holds its tools before it counts as ready
                    self.connections += 1
                    self._set_status(Status.READY)
                    logger.info("upstream %s: ready with %d tool(s)", self.name, len(self.listing.tools))
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._refresh_on_notice, conn)
                        await conn.closed.wait()
                        tg.cancel_scope.cancel()
                finally:
                    self._conn = None
                return conn.link.close_reason
        if scope.cancelled_caught:
            raise TimeoutError("timed out while connecting")
        return None

    async def _refresh_on_notice(self, conn: Connection) -> None:
        while True:
            await self._refresh.wait()
            self._refresh = anyio.Event()
            try:
                self.listing = await self._list(conn)
            except MCPError as exc:
                logger.warning("upstream %s: refresh failed: %s", self.name, exc)
                continue
            self._set_status(self.status)
            await self._on_change(self.name)

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            logger.debug("upstream %s: transport error: %s", self.name, message)
            return
        if isinstance(
            message,
            (
                types.ToolListChangedNotification,
                types.ResourceListChangedNotification,
                types.PromptListChangedNotification,
            ),
        ):
            self._refresh.set()

    def _set_status(self, status: Status) -> None:
        self.status = status
        changed, self.changed = self.changed, anyio.Event()
        changed.set()

    # -- listing ----------------------------------------------------------------------

    async def _list(self, conn: Connection) -> Listing:
        """Tools are required to work; resources, templates and prompts are best effort."""
        caps = conn.initialize.capabilities
        tools = await self._valid_tools(await self._pages(conn, "tools/list", "tools")) if caps.tools else []
        resources: list[types.Resource] = []
        templates: list[types.ResourceTemplate] = []
        prompts: list[types.Prompt] = []
        if caps.resources:
            resources = valid_items(
                self.name,
                "resource",
                types.Resource,
                await self._optional_pages(conn, "resources/list", "resources"),
            )
            templates = valid_items(
                self.name,
                "resource template",
                types.ResourceTemplate,
                await self._optional_pages(conn, "resources/templates/list", "resourceTemplates"),
            )
        if caps.prompts:
            prompts = valid_items(
                self.name, "prompt", types.Prompt, await self._optional_pages(conn, "prompts/list", "prompts")
            )
        return Listing(tuple(tools), tuple(resources), tuple(templates), tuple(prompts))

    async def _valid_tools(self, raw_tools: list[Any]) -> list[types.Tool]:
        """Validated in a worker thread: compiling thousands of schemas would stall the event loop."""
        limits = ToolLimits(self.config.max_tool_description_bytes, self.config.max_tool_definition_bytes)
        return await anyio.to_thread.run_sync(valid_tools, self.name, raw_tools, limits)

    async def _optional_pages(self, conn: Connection, method: str, key: str) -> list[Any]:
        try:
            return await self._pages(conn, method, key)
        except MCPError as exc:
            logger.info("upstream %s: %s failed (%s); treating as empty", self.name, method, exc)
            return []

    async def _pages(self, conn: Connection, method: str, key: str) -> list[Any]:
        """Every item of a paginated list, raw, so one invalid item cannot fail the whole page.

        Paging stops at ``MAX_PAGES`` pages or once the items would pass the upstream's
        ``max_listing_items`` or ``max_listing_bytes``, keeping the items that fit.
        """
        items: list[Any] = []
        budget = _Budget(self.config)
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = {"cursor": cursor} if cursor else None
            raw = await conn.dispatcher.send_raw_request(
                method, params, {"timeout": self.config.connect_timeout_s}
            )
            page = raw.get(key)
            if isinstance(page, list) and (limit := budget.take(page, items)):
                logger.warning(
                    "upstream %s: %s returned more than %s; kept the first %d item(s)",
                    self.name,
                    method,
                    limit,
                    len(items),
                )
                return items
            cursor = raw.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                return items
        logger.warning("upstream %s: %s returned more than %d pages; truncated", self.name, method, MAX_PAGES)
        return items

    # -- requests ---------------------------------------------------------------------

    def _live(self) -> Connection:
        conn = self._conn
        if conn is None:
            raise UpstreamUnavailableError(self.name, self.down_reason())
        return conn

    def down_reason(self) -> str:
        if self.status is Status.CONNECTING:
            return "connecting" + (f" (last error: {self.last_error})" if self.last_error else "")
        retry = ""
        if self.next_attempt_at is not None:
            retry = f"; reconnecting in {max(0.0, self.next_attempt_at - time.monotonic()):.1f}s"
        return f"{self.last_error or 'not connected'}{retry}"

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        meta: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        timeout_s: float | None = None,
    ) -> types.CallToolResult:
        """Forward one ``tools/call``; cancelling the caller cancels the upstream request. A
        call an HTTP upstream refused for a session it has forgotten (so never processed) is
        sent again in the session that replaces it, within the same timeout.

        Raises:
            UpstreamUnavailableError: not connected right now.
            TimeoutError: no answer within the timeout (the upstream got a cancellation).
            MCPError: the upstream answered with a JSON-RPC error.
        """
        forwarded_meta = _forwardable_meta(meta)
        return await self._in_session(
            lambda conn: _call_on(conn, name, arguments, forwarded_meta, on_progress),
            timeout_s or self.config.call_timeout_s,
            idempotent=False,
        )

    async def _in_session(
        self, request: Callable[[Connection], Awaitable[T]], timeout_s: float, *, idempotent: bool
    ) -> T:
        """``request`` on the live connection within ``timeout_s``, sent again in the session
        that follows if the upstream refused it for having forgotten this one: a
        :class:`SessionLostError` (a raw call the upstream never processed) or, for an
        ``idempotent`` request, any error the SDK raised once the session was lost.

        Raises:
            UpstreamUnavailableError, TimeoutError, MCPError.
        """
        conn = self._live()
        with anyio.fail_after(timeout_s):
            try:
                return await request(conn)
            except SessionLostError:
                pass
            except MCPError:
                if not (idempotent and conn.link.session_lost.is_set()):
                    raise
            return await request(await self._next_connection(conn))

    async def _next_connection(self, old: Connection) -> Connection:
        """The connection that replaces ``old``, once the supervisor has made it.

        Raises:
            UpstreamUnavailableError: the attempt to reconnect failed.
        """
        reconnecting = False
        while True:
            changed = self.changed
            if self._conn is not None and self._conn is not old:
                return self._conn
            reconnecting = reconnecting or self.status is Status.CONNECTING
            if reconnecting and self.status is Status.DOWN:
                raise UpstreamUnavailableError(self.name, self.down_reason())
            await changed.wait()

    async def read_resource(self, uri: str) -> types.ReadResourceResult:
        """Raises: UpstreamUnavailableError, TimeoutError, MCPError."""
        return await self._in_session(
            lambda conn: conn.session.read_resource(uri), self.config.call_timeout_s, idempotent=True
        )

    async def get_prompt(self, name: str, arguments: Mapping[str, str] | None) -> types.GetPromptResult:
        """Raises: UpstreamUnavailableError, TimeoutError, MCPError."""
        args = dict(arguments) if arguments else None
        result = await self._in_session(
            lambda conn: conn.session.get_prompt(name, args), self.config.call_timeout_s, idempotent=True
        )
        if not isinstance(result, types.GetPromptResult):
            raise MCPError(code=types.INTERNAL_ERROR, message="upstream returned an unexpected prompt result")
        return result


async def _call_on(
    conn: Connection,
    name: str,
    arguments: Mapping[str, Any] | None,
    meta: types.RequestParamsMeta | None,
    on_progress: ProgressCallback | None,
) -> types.CallToolResult:
    """One ``tools/call`` on ``conn``: the raw hop where it has one (``raw_calls.py``,
    ``raw_http_calls.py``), else the SDK session.

    Raises:
        UpstreamUnavailableError, MCPError: see :meth:`Upstream.call_tool`.
    """
    try:
        if conn.link.calls is not None:
            return await conn.link.calls.call_tool(name, arguments, meta, on_progress)
        params = types.CallToolRequestParams(
            name=name, arguments=dict(arguments) if arguments else None, _meta=meta
        )
        return await conn.session.send_request(
            types.CallToolRequest(params=params), types.CallToolResult, progress_callback=on_progress
        )
    except MCPError:
        if conn.link.close_reason:  # the gateway reset the connection (e.g. an oversized result)
            raise UpstreamUnavailableError(conn.link.upstream, conn.link.close_reason) from None
        raise


HOP_BY_HOP_META = "io.modelcontextprotocol/"
"""Reserved ``_meta`` keys describe one connection (protocol envelope, client info): never forwarded."""


def _forwardable_meta(meta: Mapping[str, Any] | None) -> types.RequestParamsMeta | None:
    """The client's ``_meta`` minus its progress token (the upstream gets one of ours) and
    the per-connection protocol envelope of the 2026-07-28 era."""
    if not meta:
        return None
    out = {k: v for k, v in meta.items() if k != "progressToken" and not k.startswith(HOP_BY_HOP_META)}
    return cast(types.RequestParamsMeta, out) if out else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out while connecting"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return (
        f"{type(exc).__name__}: {text}" if not isinstance(exc, OSError) else f"cannot start or reach: {text}"
    )
