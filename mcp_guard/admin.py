"""Operator endpoints on the HTTP transport: the approvals admin API and Slack interactivity.

The approvals service only exists while the gateway runs (it is opened in the app's
lifespan), so these apps are built on their first request and answer 503 before that.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_guard.approvals import approval_routes, slack_routes
from mcp_guard.gateway import Gateway
from mcp_guard.principal import Principal


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


class as_principal:
    """Without ``auth``, local operator requests act as the local principal."""

    def __init__(self, app: ASGIApp, principal: Principal) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["principal"] = self.principal
        await self.app(scope, receive, send)
