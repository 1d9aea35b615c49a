"""Identity for the stdio transport: a JWT from the environment, verified like HTTP.

The host (Claude Desktop, an IDE) starts ``mcp-guard`` as a subprocess and passes the
token in an environment variable (``MCP_GUARD_TOKEN`` unless ``token_env`` says
otherwise). Only when ``stdio_local_principal`` is configured does a missing token
fall back to that fixed principal. A token that is present but invalid is always an
error: falling back would silently run a user as someone else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mcp_guard.identity.config import AuthConfig
from mcp_guard.identity.errors import INVALID_TOKEN, AuthError
from mcp_guard.identity.verifier import TokenVerifier
from mcp_guard.principal import Principal


async def principal_from_environment(
    config: AuthConfig,
    environ: Mapping[str, str] = os.environ,
    *,
    verifier: TokenVerifier | None = None,
) -> Principal:
    """The Principal of a stdio session, from ``environ[config.token_env]``.

    ``verifier`` may be passed to share one (and its caches) with other transports.

    Raises:
        AuthError: the token is missing and no ``stdio_local_principal`` is configured,
            or the token is present but invalid. The message says what to do.
        ConfigError: (when no verifier is passed) a configured key cannot be loaded.
    """
    name = config.token_env
    token = environ.get(name, "").strip()
    if not token:
        if config.stdio_local_principal is not None:
            return config.stdio_local_principal
        raise AuthError(
            INVALID_TOKEN,
            f"no identity for the stdio transport: set {name} to a JWT (issue one with "
            f"`mcp-guard token issue`) or configure auth.stdio_local_principal",
        )
    verifier = verifier if verifier is not None else TokenVerifier(config)
    try:
        return await verifier.verify(token)
    except AuthError as exc:
        raise AuthError(
            exc.code,
            f"{name} does not hold a valid token: {exc.description}; issue a new one with "
            f"`mcp-guard token issue`",
        ) from None
