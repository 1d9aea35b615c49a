"""RFC 9728 OAuth 2.0 Protected Resource Metadata for the gateway.

Served at ``/.well-known/oauth-protected-resource`` and at the path-suffixed form
RFC 9728 §3.1 defines for a resource with a path (``.../oauth-protected-resource/mcp``
for ``http://host/mcp``), which is where MCP clients look first. The document is
built with the MCP SDK's own model and handler.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_resource_metadata_url, cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl, ValidationError
from starlette.routing import Route

from mcp_guard.errors import ConfigError
from mcp_guard.identity.config import AuthConfig

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"


def resource_metadata_url(config: AuthConfig) -> str:
    """The URL of the metadata document for ``config.audience`` (for ``WWW-Authenticate``).

    Raises:
        ConfigError: ``audience`` is not an http(s) URL.
    """
    return str(build_resource_metadata_url(_http_url(config.audience, "auth.audience")))


def _http_url(value: str, where: str) -> AnyHttpUrl:
    try:
        return AnyHttpUrl(value)
    except ValidationError:
        raise ConfigError([f"{where}: {value!r} is not an http(s) URL"]) from None


def build_metadata(config: AuthConfig) -> ProtectedResourceMetadata:
    """The RFC 9728 document: resource, authorization servers, scopes, header-only bearer.

    Raises:
        ConfigError: the audience or an authorization server is not an http(s) URL.
    """
    servers = [
        _http_url(server, f"auth.authorization_servers[{index}]")
        for index, server in enumerate(config.metadata_authorization_servers())
    ]
    return ProtectedResourceMetadata(
        resource=_http_url(config.audience, "auth.audience"),
        authorization_servers=servers,
        scopes_supported=config.metadata_scopes(),
        bearer_methods_supported=["header"],
        resource_name=config.resource_name,
    )


def protected_resource_routes(config: AuthConfig) -> list[Route]:
    """Starlette routes serving the metadata document (GET, with CORS for browser clients).

    Raises:
        ConfigError: the audience or an authorization server is not an http(s) URL.
    """
    handler = ProtectedResourceMetadataHandler(build_metadata(config))
    endpoint = cors_middleware(handler.handle, ["GET", "OPTIONS"])
    suffixed = urlsplit(resource_metadata_url(config)).path
    paths = [suffixed] if suffixed == WELL_KNOWN_PATH else [suffixed, WELL_KNOWN_PATH]
    return [Route(path, endpoint=endpoint, methods=["GET", "OPTIONS"]) for path in paths]
