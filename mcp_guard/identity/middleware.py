"""Bearer-token authentication as pure ASGI middleware.

On success the request carries its identity in three compatible places:

- ``scope["state"]["principal"]``: the :class:`~mcp_guard.principal.Principal`
  (``request.state.principal`` in Starlette, ``ctx.request.state.principal`` in an
  MCP handler);
- ``scope["user"]`` / ``scope["auth"]``: the MCP SDK's ``AuthenticatedUser`` and
  Starlette ``AuthCredentials``. The SDK's streamable-HTTP and SSE transports record
  ``(client_id, iss, sub)`` of the user that opened a session and answer any later
  request for that session from another identity with 404 "Session not found". We
  set ``client_id`` to ``Principal.key`` (user, agent and tenant), so a session belongs to
  exactly one principal;
- the SDK's auth context variable, so ``mcp.server.auth.middleware.auth_context.
  get_access_token()`` works as with the SDK's own ``AuthContextMiddleware``.

The ``AccessToken.token`` field holds a SHA-256 fingerprint of the bearer token, not
the token itself, so no handler can forward the client's credential upstream by
accident.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_guard.identity.errors import INSUFFICIENT_SCOPE, INVALID_REQUEST, INVALID_TOKEN, AuthError
from mcp_guard.identity.verifier import TokenVerifier, VerifiedToken

logger = logging.getLogger(__name__)

QUERY_TOKEN_PARAMETERS = frozenset({"access_token", "id_token", "token", "jwt", "bearer", "authorization"})
"""Query parameters that look like a credential; a request carrying one is refused."""

_MISSING_TOKEN = "authentication required: send 'Authorization: Bearer <token>'"


def access_token_for(verified: VerifiedToken, bearer: str) -> AccessToken:
    """The MCP SDK ``AccessToken`` describing a verified token.

    ``client_id`` is ``Principal.key``, ``subject`` the user and ``claims["iss"]`` the
    issuer: the triple the SDK binds sessions to. ``token`` is a fingerprint of
    ``bearer``, not the credential itself.
    """
    principal = verified.principal
    fingerprint = "sha256:" + hashlib.sha256(bearer.encode()).hexdigest()
    return AccessToken(
        token=fingerprint,
        client_id=principal.key,
        scopes=sorted(principal.scopes),
        expires_at=verified.expires_at,
        resource=verified.audience,
        subject=principal.user,
        claims={"iss": principal.issuer},
    )


def _quote(value: str) -> str:
    """An RFC 7230 quoted-string body, with characters that could break the header removed."""
    return "".join(ch for ch in value if ch >= " " and ch not in '"\\\x7f')


class BearerAuthMiddleware:
    """Require a valid ``Authorization: Bearer`` JWT on every HTTP request.

    - missing credentials: 401 with ``WWW-Authenticate: Bearer resource_metadata="..."``
      (no error code, RFC 6750 §3.1);
    - an invalid token: 401 ``error="invalid_token"`` with a client-safe description;
    - a token in the query string, or a malformed Authorization header: 400
      ``error="invalid_request"``;
    - a valid token without every scope in ``required_scopes``: 403
      ``error="insufficient_scope"``.

    ``lifespan`` events pass straight through; WebSocket connections are refused
    (MCP does not use them and this middleware cannot authenticate them).
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        *,
        resource_metadata_url: str | None = None,
        required_scopes: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.resource_metadata_url = resource_metadata_url
        self.required_scopes = tuple(required_scopes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "bearer authentication required"})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        try:
            bearer = self._bearer(scope)
            if bearer is None:
                await self._refuse(send, 401, None, _MISSING_TOKEN)
                return
            verified = await self.verifier.authenticate(bearer)
        except AuthError as exc:
            logger.info("refused %s %s: %s", scope.get("method"), scope.get("path"), exc.description)
            await self._refuse(send, exc.status, exc.code, exc.description)
            return
        missing = [s for s in self.required_scopes if s not in verified.principal.scopes]
        if missing:
            description = f"token lacks the required scope(s): {' '.join(missing)}"
            await self._refuse(send, 403, INSUFFICIENT_SCOPE, description)
            return
        access_token = access_token_for(verified, bearer)
        user = AuthenticatedUser(access_token)
        scope["user"] = user
        scope["auth"] = AuthCredentials(access_token.scopes)
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["principal"] = verified.principal
        reset = auth_context_var.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(reset)

    def _bearer(self, scope: Scope) -> str | None:
        """The bearer token, ``None`` when no credentials were sent.

        Raises:
            AuthError: a credential in the query string, several Authorization
                headers, or a Bearer header without a token.
        """
        query = scope.get("query_string", b"")
        if query:
            names = {name.lower() for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
            if names & QUERY_TOKEN_PARAMETERS:
                raise AuthError(
                    INVALID_REQUEST,
                    "access tokens in the URL query string are refused (they leak into logs); "
                    "send 'Authorization: Bearer <token>'",
                    status=400,
                )
        values: list[bytes] = [
            value for name, value in scope.get("headers", ()) if name.lower() == b"authorization"
        ]
        if not values:
            return None
        if len(values) > 1:
            raise AuthError(INVALID_REQUEST, "send exactly one Authorization header", status=400)
        scheme, _, credentials = values[0].decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = credentials.strip()
        if not token:
            raise AuthError(INVALID_TOKEN, "the Bearer Authorization header holds no token")
        return token

    def _challenge(self, error: str | None, description: str) -> str:
        parts: list[str] = []
        if error is not None:
            parts.append(f'error="{error}"')
            parts.append(f'error_description="{_quote(description)}"')
        if self.required_scopes and error in (None, INVALID_TOKEN, INSUFFICIENT_SCOPE):
            parts.append(f'scope="{_quote(" ".join(self.required_scopes))}"')
        if self.resource_metadata_url:
            parts.append(f'resource_metadata="{_quote(self.resource_metadata_url)}"')
        return "Bearer " + ", ".join(parts) if parts else "Bearer"

    async def _refuse(self, send: Send, status: int, error: str | None, description: str) -> None:
        body = json.dumps({"error": error or "unauthorized", "error_description": description}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"www-authenticate", self._challenge(error, description).encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
