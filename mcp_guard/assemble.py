"""Putting a configured gateway together for a transport: identity, routes, middleware."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from ipaddress import ip_address

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from mcp_guard.admin import approvals_admin_app, as_principal, health_detail_app, slack_app
from mcp_guard.config.settings import GatewaySettings
from mcp_guard.errors import ConfigError
from mcp_guard.gateway import Gateway
from mcp_guard.identity import (
    AuthError,
    BearerAuthMiddleware,
    StdioIdentity,
    TokenVerifier,
    identity_from_environment,
    protected_resource_routes,
    resource_metadata_url,
)
from mcp_guard.principal import principal_in
from mcp_guard.transports import AllowedHostsOnly, build_http_app

logger = logging.getLogger(__name__)


async def stdio_identity(settings: GatewaySettings, environ: Mapping[str, str] = os.environ) -> StdioIdentity:
    """Who the stdio client is: a verified ``MCP_GUARD_TOKEN`` (until it expires), or the
    explicit local principal.

    Raises:
        AuthError: a token is required but missing or invalid (the message says what to do).
        ConfigError: neither ``auth`` nor ``local_principal`` is configured.
    """
    if settings.auth is not None:
        auth = settings.auth
        if auth.stdio_local_principal is None and settings.local_principal is not None:
            auth = auth.model_copy(update={"stdio_local_principal": settings.local_principal})
        return await identity_from_environment(auth, environ)
    if settings.local_principal is not None:
        return StdioIdentity(settings.local_principal)
    raise ConfigError(
        [
            "mcp-guard.yaml: no identity configured: add an 'auth' section (tokens, see docs/identity.md) "
            "or, for local use only, a 'local_principal'"
        ]
    )


def http_app(gateway: Gateway) -> Starlette:
    """The HTTP app with bearer authentication, or the explicit local principal on loopback.

    Raises:
        ConfigError: no identity is configured, or a local principal on a non-loopback address.
    """
    settings = gateway.settings
    if settings.auth is not None:
        auth = settings.auth
        verifier = TokenVerifier(auth)
        metadata_url = resource_metadata_url(auth)

        def protect(app: ASGIApp) -> ASGIApp:
            return BearerAuthMiddleware(
                app, verifier, resource_metadata_url=metadata_url, required_scopes=auth.required_scopes
            )

        return build_http_app(
            gateway,
            resolve_principal=principal_in,
            wrap_mcp=protect,
            extra_routes=[*protected_resource_routes(auth), *_operator_routes(gateway, protect)],
        )
    local = settings.local_principal
    if local is None:
        raise ConfigError(
            [
                "mcp-guard.yaml: the HTTP transport needs an 'auth' section (bearer tokens, see "
                "docs/identity.md) or, on a loopback address only, a 'local_principal'"
            ]
        )
    if not _is_loopback(settings.server.host):
        raise ConfigError(
            [
                f"mcp-guard.yaml: server.host {settings.server.host!r} is not a loopback address; "
                "a 'local_principal' without 'auth' would let anyone on the network act as it"
            ]
        )
    logger.warning("no 'auth' configured: every HTTP client acts as local principal %r", local.user)
    return build_http_app(
        gateway,
        resolve_principal=lambda scope: local,
        extra_routes=_operator_routes(gateway, lambda app: as_principal(app, local)),
    )


def _operator_routes(gateway: Gateway, protect: Callable[[ASGIApp], ASGIApp]) -> list[BaseRoute]:
    """The approvals admin API and the detailed health view (authenticated, and behind the
    same Host/Origin allowlist as ``/mcp``) and, when configured, Slack interactivity
    (Slack-signed; Slack's requests carry the public host the operator gave Slack)."""
    server = gateway.settings.server

    def operator(app: ASGIApp) -> ASGIApp:
        return AllowedHostsOnly(protect(app), server)

    routes: list[BaseRoute] = [
        Route("/admin/approvals{rest:path}", endpoint=operator(approvals_admin_app(gateway))),
        Route("/admin/health", endpoint=operator(health_detail_app(gateway)), methods=["GET"]),
    ]
    slack = slack_app(gateway)
    if slack is not None:
        routes.append(Route("/slack/interactivity", endpoint=slack, methods=["POST"]))
    return routes


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["AuthError", "http_app", "stdio_identity"]
