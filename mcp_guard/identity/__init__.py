"""Identity: who is calling, from a verified JWT (HTTP bearer or stdio environment).

The gateway uses exactly this surface::

    verifier = TokenVerifier(config)
    principal = await verifier.verify(token)
    app = BearerAuthMiddleware(app, verifier, resource_metadata_url=..., required_scopes=[...])
    routes = protected_resource_routes(config)
    identity = await identity_from_environment(config, environ=os.environ)  # stdio
    principal = identity.current()  # per request: refused once the token has expired
"""

from mcp_guard.identity.config import AuthConfig, ClaimMapping, KeySource
from mcp_guard.identity.errors import AuthError
from mcp_guard.identity.metadata import protected_resource_routes, resource_metadata_url
from mcp_guard.identity.middleware import BearerAuthMiddleware
from mcp_guard.identity.stdio import StdioIdentity, identity_from_environment
from mcp_guard.identity.verifier import TokenVerifier, VerifiedToken

__all__ = [
    "AuthConfig",
    "AuthError",
    "BearerAuthMiddleware",
    "ClaimMapping",
    "KeySource",
    "StdioIdentity",
    "TokenVerifier",
    "VerifiedToken",
    "identity_from_environment",
    "protected_resource_routes",
    "resource_metadata_url",
]
