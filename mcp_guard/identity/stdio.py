"""Identity for the stdio transport: a JWT from the environment, verified like HTTP.

The host (Claude Desktop, an IDE) starts ``mcp-guard`` as a subprocess and passes the
token in an environment variable (``MCP_GUARD_TOKEN`` unless ``token_env`` says
otherwise). Only when ``stdio_local_principal`` is configured does a missing token
fall back to that fixed principal. A token that is present but invalid is always an
error: falling back would silently run a user as someone else.

The token is verified once, at start-up; its expiry is checked again on every request
(:meth:`StdioIdentity.current`), so a stdio session ends where the token's validity
ends, exactly as an HTTP client's does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from mcp_guard.identity.config import AuthConfig
from mcp_guard.identity.errors import INVALID_TOKEN, AuthError
from mcp_guard.identity.jwks import Clock
from mcp_guard.identity.verifier import TOKEN_EXPIRED, TokenVerifier
from mcp_guard.principal import Principal


@dataclass(frozen=True, slots=True)
class StdioIdentity:
    """Who a stdio session acts as, and until when.

    ``expires_at`` is the token's ``exp`` (epoch seconds), honoured with ``leeway_s`` as
    the verifier honours it; ``None`` for the configured local principal, which has no
    token and does not expire. ``wall_clock`` (epoch seconds) can be replaced in tests.
    """

    principal: Principal
    expires_at: int | None = None
    leeway_s: int = 0
    token_env: str = "MCP_GUARD_TOKEN"
    wall_clock: Clock = time.time

    def current(self) -> Principal:
        """The principal, for one request: a comparison with the clock, no verification.

        Raises:
            AuthError: the token has expired (``exp`` + leeway has passed); the message
                says what to do.
        """
        if self.expires_at is not None and self.wall_clock() >= self.expires_at + self.leeway_s:
            raise _not_valid(self.token_env, AuthError(INVALID_TOKEN, TOKEN_EXPIRED), restart=True)
        return self.principal


async def identity_from_environment(
    config: AuthConfig,
    environ: Mapping[str, str] = os.environ,
    *,
    verifier: TokenVerifier | None = None,
    wall_clock: Clock = time.time,
) -> StdioIdentity:
    """The identity of a stdio session, from ``environ[config.token_env]``.

    ``verifier`` may be passed to share one (and its caches) with other transports.
    ``wall_clock`` is what :meth:`StdioIdentity.current` compares the token's expiry with.

    Raises:
        AuthError: the token is missing and no ``stdio_local_principal`` is configured,
            or the token is present but invalid. The message says what to do.
        ConfigError: (when no verifier is passed) a configured key cannot be loaded.
    """
    name = config.token_env
    token = environ.get(name, "").strip()
    if not token:
        if config.stdio_local_principal is not None:
            return StdioIdentity(config.stdio_local_principal, token_env=name, wall_clock=wall_clock)
        raise AuthError(
            INVALID_TOKEN,
            f"no identity for the stdio transport: set {name} to a JWT (issue one with "
            f"`mcp-guard token issue`) or configure auth.stdio_local_principal",
        )
    verifier = verifier if verifier is not None else TokenVerifier(config)
    try:
        verified = await verifier.authenticate(token)
    except AuthError as exc:
        raise _not_valid(name, exc, restart=False) from None
    return StdioIdentity(
        verified.principal,
        expires_at=verified.expires_at,
        leeway_s=config.leeway_s,
        token_env=name,
        wall_clock=wall_clock,
    )


def _not_valid(name: str, exc: AuthError, *, restart: bool) -> AuthError:
    """``exc`` with a message for whoever set ``name``: what is wrong and what to do."""
    then = " and start mcp-guard again with it" if restart else ""
    return AuthError(
        exc.code,
        f"{name} does not hold a valid token: {exc.description}; issue a new one with "
        f"`mcp-guard token issue`{then}",
    )
