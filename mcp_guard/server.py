"""The MCP server clients talk to: every request goes through the :class:`Gateway`.

Built on the SDK's low-level ``Server`` so that nothing is re-validated or reshaped
on the way through: tool definitions, results, content and ``_meta`` pass unchanged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
from mcp import types
from mcp.server._otel import OpenTelemetryMiddleware  # the SDK exports no public name for it
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from opentelemetry import trace
from starlette.requests import Request

from mcp_guard import __version__
from mcp_guard.errors import UnknownToolError, UpstreamUnavailableError
from mcp_guard.gateway import Gateway
from mcp_guard.principal import Principal
from mcp_guard.tool_wire import SplicedToolPages, tool_page

logger = logging.getLogger(__name__)

T = TypeVar("T")
PrincipalResolver = Callable[[ServerRequestContext[Any, Any]], Principal | None]

INSTRUCTIONS = (
    "mcp-guard governs these tools: every call is checked against policy before it runs. "
    "A refused call returns an error naming the rule and reason; do not retry it unchanged."
)


class GuardServer(Server[Any]):
    """Advertises list-changed notifications on every transport (the SDK default is off),
    opens an OpenTelemetry span per request only when a tracer provider is installed
    (a span costs ~0.1 ms per request even when nobody collects it), and answers
    ``tools/list`` with tools shaped once, not once a page (:mod:`mcp_guard.tool_wire`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not tracing_configured():
            self.middleware = [m for m in self.middleware if not isinstance(m, OpenTelemetryMiddleware)]
        self.middleware.append(SplicedToolPages())  # innermost, as it must be

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options
            or NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
            experimental_capabilities,
            extensions,
        )


SSE_MESSAGES_PATH = "/messages/"


def session_key(ctx: ServerRequestContext[Any, Any], fallback: str) -> str:
    """The transport session id, else ``fallback``: the one the transport routed the
    request by, so a client cannot name another -- the ``session_id`` query of an SSE
    message post, the ``mcp-session-id`` header on streamable HTTP (never the other way
    round: an SSE post's header, like a streamable-HTTP query, is whatever the client wrote)."""
    request = ctx.request
    if request is not None:
        if request.url.path.startswith(SSE_MESSAGES_PATH):
            sid = request.query_params.get("session_id")
        else:
            sid = request.headers.get("mcp-session-id")
        if sid:
            return str(sid)
    return fallback


def build_server(  # noqa: PLR0915 - one closure per MCP method
    gateway: Gateway,
    resolve_principal: PrincipalResolver,
    *,
    stdio_session: str | None = None,
    on_initialized: Callable[[ServerRequestContext[Any, Any]], None] | None = None,
) -> GuardServer:
    """An MCP server whose handlers delegate to ``gateway`` for the resolved principal.

    ``stdio_session`` is the session id of calls that arrive without a transport session
    (stdio); a fresh one by default. ``on_initialized`` is told of each client's
    ``notifications/initialized`` (the streamable-HTTP call lane opens a session there).
    """
    page_size = gateway.settings.server.list_page_size
    stdio_session = stdio_session or uuid.uuid4().hex

    def principal(ctx: ServerRequestContext[Any, Any]) -> Principal:
        found = resolve_principal(ctx)
        if found is None:  # the transport let an unauthenticated request through: refuse, never guess
            raise MCPError(code=types.INVALID_REQUEST, message="unauthenticated request")
        return found

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = gateway.visible_tools(principal(ctx))
        page, cursor = _page(tools, params.cursor if params else None, page_size)
        return await tool_page(page, cursor, lambda: gateway.wire_tools(page, ctx.protocol_version))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        client = ctx.session.client_params
        client_info = client.client_info.model_dump(mode="json") if client and client.client_info else None
        wire = ctx.params or {}  # the request as sent: ``_meta`` keys in their wire spelling
        meta = wire.get("_meta")

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        async def call() -> types.CallToolResult:
            return await gateway.call_tool(
                principal(ctx),
                session_key(ctx, stdio_session),
                params.name,
                params.arguments,
                meta=dict(meta) if isinstance(meta, Mapping) and meta else None,
                client_info=client_info,
                on_progress=on_progress if progress_token_from_params(wire) is not None else None,
            )

        try:
            return await _until_the_client_leaves(ctx.request, call)
        except UnknownToolError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        seen = gateway.seen_upstreams(principal(ctx))
        items = [resource for up, resource in gateway.catalog.resources.values() if up in seen]
        page, cursor = _page(items, params.cursor if params else None, page_size)
        return types.ListResourcesResult(resources=page, next_cursor=cursor)

    async def list_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        seen = gateway.seen_upstreams(principal(ctx))
        items = [template for up, template in gateway.catalog.templates if up in seen]
        page, cursor = _page(items, params.cursor if params else None, page_size)
        return types.ListResourceTemplatesResult(resource_templates=page, next_cursor=cursor)

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        who = principal(ctx)
        found = gateway.catalog.resource_upstream(params.uri)
        session = session_key(ctx, stdio_session)
        upstream = await gateway.admit_read(who, session, "resources/read", params.uri, found)
        if upstream is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {params.uri}")
        return await _relay(lambda: gateway.upstreams[upstream].read_resource(params.uri))

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        seen = gateway.seen_upstreams(principal(ctx))
        items = [prompt for route, prompt in gateway.catalog.prompts.values() if route.upstream in seen]
        page, cursor = _page(items, params.cursor if params else None, page_size)
        return types.ListPromptsResult(prompts=page, next_cursor=cursor)

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        who = principal(ctx)
        entry = gateway.catalog.prompts.get(params.name)
        route = entry[0] if entry is not None else None
        session = session_key(ctx, stdio_session)
        found = route.upstream if route is not None else None
        upstream = await gateway.admit_read(who, session, "prompts/get", params.name, found)
        if upstream is None or route is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
        return await _relay(lambda: gateway.upstreams[upstream].get_prompt(route.original, params.arguments))

    async def initialized(
        ctx: ServerRequestContext[Any, Any], params: types.NotificationParams | None
    ) -> None:
        found = resolve_principal(ctx)
        connection = getattr(ctx.session, "_connection", None)  # the SDK keeps no public accessor
        if found is not None and connection is not None:
            gateway.notifier.register(connection, ctx.session, found, gateway.visible_tool_names(found))
        if on_initialized is not None:
            on_initialized(ctx)

    server = GuardServer(
        "mcp-guard",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_subscriptions_listen=ListenHandler(gateway.notifier.bus),
    )
    server.add_notification_handler("notifications/initialized", types.NotificationParams, initialized)
    return server


def tracing_configured() -> bool:
    """Whether an OpenTelemetry SDK tracer provider is installed (e.g. by ``opentelemetry-instrument``)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


async def _until_the_client_leaves(
    request: Request | None, call: Callable[[], Awaitable[types.CallToolResult]]
) -> types.CallToolResult:
    """Run ``call``, cancelled if the client drops the streamable-HTTP POST that carries it.

    The SDK keeps serving a request whose POST has gone; a call held for approval would
    then run on a later approval with nobody to answer. Cancelled, a held call's approval
    request becomes ``abandoned`` and a forwarded call is cancelled upstream, as when the
    client cancels it. (An SSE message post is answered at once with 202 and its answer
    travels on the GET stream, so its end says nothing; stdio has no request here.)
    """
    if request is None or request.url.path.startswith(SSE_MESSAGES_PATH):
        return await call()
    answer: types.CallToolResult | None = None
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            logger.info("the client dropped its request; cancelling the call")
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        try:
            answer = await call()
        except Exception as exc:  # raised from the task group it would reach the SDK as an ExceptionGroup
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if answer is None:
        raise MCPError(code=types.CONNECTION_CLOSED, message="the client went away; the call was cancelled")
    return answer


async def _relay(request: Callable[[], Awaitable[T]]) -> T:
    """Run a pass-through request; upstream trouble becomes a clear JSON-RPC error."""
    try:
        return await request()
    except UpstreamUnavailableError as exc:
        raise MCPError(code=types.INTERNAL_ERROR, message=str(exc)) from None
    except TimeoutError:
        raise MCPError(code=types.INTERNAL_ERROR, message="upstream did not answer in time") from None


def _page(items: Sequence[T], cursor: str | None, size: int) -> tuple[list[T], str | None]:
    """Offset pagination with an opaque cursor."""
    try:
        start = int(cursor, 16) if cursor else 0
    except ValueError:
        raise MCPError(code=types.INVALID_PARAMS, message="invalid cursor") from None
    if start < 0 or start > len(items):
        raise MCPError(code=types.INVALID_PARAMS, message="invalid cursor")
    end = start + size
    return list(items[start:end]), (format(end, "x") if end < len(items) else None)
