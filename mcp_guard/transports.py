"""Serving the gateway to clients: stdio, or HTTP (streamable HTTP at ``/mcp``, SSE at ``/sse``)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import anyio
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_guard.config.settings import ServerSettings
from mcp_guard.gateway import Gateway
from mcp_guard.http_lane import HttpCallLane
from mcp_guard.identity import AuthError, StdioIdentity
from mcp_guard.malformed import AnswerMalformedPosts, answer_malformed
from mcp_guard.principal import Principal, principal_in
from mcp_guard.server import SSE_MESSAGES_PATH, build_server
from mcp_guard.session_bounds import SessionLedger, SessionsPerPrincipal, opens_streamable_session
from mcp_guard.stdio_lane import StdioCallLane
from mcp_guard.stdio_wire import StdinLines, StdoutClosed, StdoutPipe, claimed_stdout, pollable
from mcp_guard.tool_wire import SplicedToolPages
from mcp_guard.upstreams.supervisor import Status

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
STDIN_EOF_GRACE_S = 5.0
"""After a stdio client closes stdin, how long its calls in flight may take to answer."""


async def serve_stdio(gateway: Gateway, identity: StdioIdentity) -> None:
    """Serve one client over this process's stdin/stdout until it disconnects.

    Nothing but protocol reaches stdout: logs go to stderr, and fd 1 points at stderr
    while serving so stray output cannot corrupt the wire. Pipes and terminals are
    read and written on the event loop (:mod:`mcp_guard.stdio_wire`), and ``tools/call``
    requests skip the SDK's session (:mod:`mcp_guard.stdio_lane`); anything else (a
    regular file) falls back to the SDK's threaded streams.

    A client that closes stdout ends the session as closing stdin does, without a traceback;
    calls still in flight are cancelled (their decisions are already in the audit log).

    Every request asks ``identity`` for its principal: once the token has expired, each
    one is refused (:func:`stdio_principal`) and the process keeps serving the refusals.
    """
    session_id = uuid.uuid4().hex
    principal = stdio_principal(identity)
    server = build_server(gateway, lambda ctx: principal(), stdio_session=session_id)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        with contextlib.ExitStack() as fds:
            stdin: AsyncIterable[str] | None = StdinLines(0) if pollable(0) else None
            stdout = StdoutPipe(fds.enter_context(claimed_stdout())) if pollable(1) else None
            # The lane bypasses the SDK's middleware, so it stays off when any that sees calls
            # is installed (tracing); SplicedToolPages touches tools/list alone.
            lane = gateway.settings.server.fast_stdio_calls and all(
                isinstance(m, SplicedToolPages) for m in server.middleware
            )
            info = server.server_info_stamp
            try:
                async with anyio.create_task_group() as calls:
                    stdio_lane = None
                    if lane and stdin is not None and stdout is not None:
                        stdio_lane = StdioCallLane(
                            gateway, principal, session_id, stdout, calls, server_info=info
                        )
                        stdin = stdio_lane.lines(stdin)
                    if stdin is not None and stdout is not None:
                        stdin = answer_malformed(stdin, stdout)
                    async with stdio_server(stdin=stdin, stdout=stdout) as (read, write):  # type: ignore[arg-type]
                        await server.run(read, write, server.create_initialization_options())
                    if stdio_lane is not None:
                        await stdio_lane.drain(STDIN_EOF_GRACE_S)
            except* StdoutClosed:
                logger.info("the client closed stdout; shutting down")
        tg.cancel_scope.cancel()


def stdio_principal(identity: StdioIdentity) -> Callable[[], Principal]:
    """The principal of each stdio request, or the JSON-RPC error refusing it.

    The returned function raises ``MCPError`` (``INVALID_REQUEST``, the reason in the
    message, ``{"error": "invalid_token"}`` as data) once the token has expired, and
    logs the first refusal.
    """
    warned = False

    def current() -> Principal:
        nonlocal warned
        try:
            return identity.current()
        except AuthError as exc:
            if not warned:
                warned = True
                logger.warning("refusing every request from now on: %s", exc.description)
            raise MCPError(
                code=types.INVALID_REQUEST, message=exc.description, data={"error": exc.code}
            ) from None

    return current


class AllowedHostsOnly:
    """DNS-rebinding protection for routes the SDK does not serve (the operator API): the
    Host/Origin allowlist of ``/mcp`` (421 for a foreign Host, 403 for a foreign Origin).
    Without it a web page the operator visits could, through a rebound name, read
    ``/admin/approvals`` as the local principal."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self._check = TransportSecurityMiddleware(security_settings(settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = await self._check.validate_request(Request(scope, receive))
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def security_settings(settings: ServerSettings) -> TransportSecuritySettings:
    """DNS-rebinding protection: only loopback plus configured Host/Origin values."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*LOOPBACK_HOSTS, *settings.allowed_hosts],
        allowed_origins=[*LOOPBACK_ORIGINS, *settings.allowed_origins],
    )


def health_summary(gateway: Gateway) -> dict[str, Any]:
    """What anyone may learn, for load balancers and probes: whether the gateway serves
    (``starting`` until its services are open, then ``ok``, or ``degraded`` while an
    upstream is not ready) and how many upstreams are ready. Upstream names, errors and
    breakers are for authenticated callers (``/admin/health``), each seeing only its own."""
    upstreams = gateway.upstreams.values()
    ready = sum(1 for u in upstreams if u.status is Status.READY)
    status = "starting" if gateway.services is None else "ok" if ready == len(upstreams) else "degraded"
    return {"status": status, "upstreams": {"ready": ready, "total": len(upstreams)}}


def build_http_app(
    gateway: Gateway,
    *,
    resolve_principal: Callable[[Scope], Principal | None] = principal_in,
    wrap_mcp: Callable[[ASGIApp], ASGIApp] = lambda app: app,
    extra_routes: list[BaseRoute] | None = None,
    call_lane: bool = True,
) -> Starlette:
    """The HTTP app: streamable HTTP at ``/mcp``, SSE at ``/sse`` + ``/messages/``, ``/healthz``
    (unauthenticated, so it names nothing; see :func:`health_summary`).

    ``wrap_mcp`` wraps the MCP endpoints (authentication middleware goes there); inside it,
    each principal opens at most ``server.max_sessions_per_principal`` sessions
    (:mod:`mcp_guard.session_bounds`).
    ``resolve_principal`` names the principal of a request from its ASGI scope (authentication
    middleware places it there: :func:`~mcp_guard.principal.principal_in`).
    ``call_lane``: streamable-HTTP ``tools/call`` requests skip the SDK's session
    (:mod:`mcp_guard.http_lane`) unless false, ``server.fast_http_calls`` is false or a
    middleware that sees calls (tracing) is installed.
    The app's lifespan owns the gateway's background tasks and the session manager.
    """
    settings = gateway.settings.server
    lane: HttpCallLane | None = None

    def on_initialized(ctx: ServerRequestContext[Any, Any]) -> None:
        if lane is not None:
            lane.note_initialized(ctx)

    server = build_server(
        gateway,
        lambda ctx: resolve_principal(ctx.request.scope if ctx.request is not None else {}),
        on_initialized=on_initialized,
    )
    security = security_settings(settings)
    manager = StreamableHTTPSessionManager(
        app=server,
        security_settings=security,
        max_request_body_size=settings.max_body_bytes,
        session_idle_timeout=settings.session_idle_timeout_s,
        max_sessions=settings.max_sessions,
        json_response=settings.json_responses,
    )
    ledger = SessionLedger(
        settings.max_sessions_per_principal,
        # The SDK keeps no public accessor for its open sessions.
        is_open=lambda session_id: session_id in manager._server_instances,
        sweep_above=settings.max_sessions,
    )
    sse = SseServerTransport(
        SSE_MESSAGES_PATH, security_settings=security, max_request_body_size=settings.max_body_bytes
    )

    class SseEndpoint:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async with sse.connect_sse(scope, receive, send) as (read, write):
                await server.run(read, write, server.create_initialization_options())

    async def health(request: Request) -> Response:
        body = health_summary(gateway)
        return JSONResponse(body, status_code=503 if body["status"] == "starting" else 200)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg, manager.run():
            await tg.start(gateway.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    streamable: ASGIApp = AnswerMalformedPosts(
        SessionsPerPrincipal(StreamableHTTPASGIApp(manager), ledger, opens_streamable_session)
    )
    # The lane bypasses the SDK's middleware, so it stays off when any that sees calls is
    # installed (tracing); SplicedToolPages touches tools/list alone.
    if (
        call_lane
        and settings.fast_http_calls
        and all(isinstance(m, SplicedToolPages) for m in server.middleware)
    ):
        lane = HttpCallLane(
            streamable,
            gateway,
            manager,
            resolve_principal,
            security=security,
            max_body_bytes=settings.max_body_bytes,
            json_responses=settings.json_responses,
            server_info=server.server_info_stamp,
        )
        streamable = lane
    routes: list[BaseRoute] = [
        Route("/mcp", endpoint=wrap_mcp(streamable)),
        Route("/sse", endpoint=wrap_mcp(SessionsPerPrincipal(SseEndpoint(), ledger)), methods=["GET"]),
        Mount(SSE_MESSAGES_PATH, app=wrap_mcp(AnswerMalformedPosts(sse.handle_post_message))),
        Route("/healthz", endpoint=health),
        *(extra_routes or []),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
