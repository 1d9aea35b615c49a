"""Operator endpoints on the HTTP transport: the approvals admin API, the detailed health
view and Slack interactivity.

The approvals service only exists while the gateway runs (it is opened in the app's
lifespan), so these apps are built on their first request and answer 503 before that.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Router, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_guard.approvals import approval_routes, slack_routes
from mcp_guard.gateway import Gateway
from mcp_guard.principal import Principal, principal_in
from mcp_guard.transports import health_summary


class _WhenRunning:
    """An ASGI app built from the gateway's services on first use."""

    def __init__(self, gateway: Gateway, build: Callable[[Gateway], ASGIApp]) -> None:
        self.gateway = gateway
        self.build = build
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self.app is None:
            if self.gateway.services is None:
                await JSONResponse(
                    {"error": "unavailable", "message": "the gateway is starting"}, status_code=503
                )(scope, receive, send)
                return
            self.app = self.build(self.gateway)
        await self.app(scope, receive, send)


def approvals_admin_app(gateway: Gateway) -> ASGIApp:
    """``/admin/approvals`` (list, show, approve, reject); put it behind bearer authentication."""

    def build(gw: Gateway) -> ASGIApp:
        assert gw.services is not None
        return Router(routes=approval_routes(gw.services.approvals, prefix="/admin/approvals"))

    return _WhenRunning(gateway, build)


def slack_app(gateway: Gateway) -> ASGIApp | None:
    """Slack's interactivity endpoint (Slack signs its requests; no bearer token), when configured."""
    slack = gateway.settings.approvals.slack
    if slack is None:
        return None

    def build(gw: Gateway) -> ASGIApp:
        assert gw.services is not None
        return Router(routes=slack_routes(gw.services.approvals, slack, path="/slack/interactivity"))

    return _WhenRunning(gateway, build)


def health_detail_app(gateway: Gateway) -> ASGIApp:
    """``/admin/health``: each upstream's status, tool count, connections and last error, and
    the circuit breakers; put it behind authentication. A caller sees the upstreams it may
    use (:meth:`Gateway.seen_upstreams`) and the breakers on those or on its tools, as
    ``tools/list`` shows it only its tools."""

    async def detail(request: Request) -> Response:
        principal = principal_in(request.scope)
        if principal is None:
            return JSONResponse(
                {"error": "unauthenticated", "message": "no authenticated principal on this request"},
                status_code=401,
            )
        body = health_summary(gateway)
        if gateway.services is None:
            return JSONResponse(body, status_code=503)
        seen = gateway.seen_upstreams(principal)
        targets = seen | gateway.visible_tool_names(principal)
        controls = gateway.controls
        breakers = await controls.snapshot() if controls is not None else []
        body["upstreams"] = {
            name: {
                "status": u.status.value,
                "tools": len(u.listing.tools),
                "connections": u.connections,
                "error": u.last_error,
            }
            for name, u in gateway.upstreams.items()
            if name in seen
        }
        body["breakers"] = [b.model_dump(mode="json") for b in breakers if b.target in targets]
        return JSONResponse(body)

    return request_response(detail)


class as_principal:
    """Without ``auth``, local operator requests act as the local principal."""

    def __init__(self, app: ASGIApp, principal: Principal) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["principal"] = self.principal
        await self.app(scope, receive, send)
