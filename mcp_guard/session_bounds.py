"""Transport sessions per principal: at most ``server.max_sessions_per_principal`` at once.

The SDK's streamable-HTTP session manager bounds sessions only in total
(``server.max_sessions``): past it, every request that would open a session gets ``503 Too
many open sessions`` and no open session is evicted. One principal opening sessions could so
lock every other one out until its own sessions idle out (``server.session_idle_timeout_s``).
:class:`SessionsPerPrincipal` sits in front of ``/mcp`` and ``/sse`` (behind authentication)
and refuses a principal's request to open one more session than its bound with ``429`` and a
JSON-RPC error naming the bound (:func:`too_many_sessions`). The principal's open sessions are left
alone, and so are everyone else's: a principal at its bound takes nothing from anyone.

A streamable-HTTP session counts from the request that opens it (a request without an
``mcp-session-id``, the ``initialize`` POST) until the SDK forgets it (a DELETE, the idle
timeout, a crash, shutdown); an SSE session for as long as its ``GET /sse`` stream is open.
Requests no authentication middleware placed a principal on share one bound (without
``auth``, every client is the local principal).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from mcp import types
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_guard.principal import principal_in

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Claim:
    """One place under a principal's bound, held by a request that may open a session: while
    it is served and, once it opened a streamable-HTTP session, while that session is open."""

    session_id: str | None = None


class SessionLedger:
    """The places each principal (by :attr:`~mcp_guard.principal.Principal.key`, ``None`` for
    an unidentified client) holds, and whether it may take one more.

    ``is_open`` says whether the SDK still serves a streamable-HTTP session: the places of
    sessions it has forgotten are given back when their principal next asks for one, and
    every principal's when more than ``sweep_above`` principals hold places (open sessions
    never outnumber ``server.max_sessions``, so a sweep keeps what principals that never come
    back leave behind bounded).
    """

    def __init__(self, limit: int, is_open: Callable[[str], bool], *, sweep_above: int) -> None:
        self.limit = limit
        self._is_open = is_open
        self._sweep_above = sweep_above
        self._held: dict[str | None, set[Claim]] = {}

    def claim(self, key: str | None) -> Claim | None:
        """A place for ``key``, or ``None`` when it already holds :attr:`limit`."""
        if len(self._held) > self._sweep_above:
            for other in list(self._held):
                self._still_held(other)
        held = self._still_held(key)
        if len(held) >= self.limit:
            return None
        claim = Claim()
        self._held.setdefault(key, held).add(claim)
        return claim

    def release(self, key: str | None, claim: Claim) -> None:
        """Give back a place whose request opened no session that lasts."""
        held = self._held.get(key)
        if held is not None:
            held.discard(claim)
            if not held:
                del self._held[key]

    def held_by(self, key: str | None) -> int:
        """How many places ``key`` holds now."""
        return len(self._still_held(key))

    def _still_held(self, key: str | None) -> set[Claim]:
        held = {
            claim
            for claim in self._held.pop(key, ())
            if claim.session_id is None or self._is_open(claim.session_id)
        }
        if held:
            self._held[key] = held
        return held


def opens_streamable_session(scope: Scope) -> bool:
    """Whether the SDK's session manager opens a session for this ``/mcp`` request: one without
    an ``mcp-session-id``, unless its ``mcp-protocol-version`` routes it to the sessionless
    2026-07-28 entry (the manager's own test)."""
    headers = Headers(scope=scope)
    if MCP_SESSION_ID_HEADER in headers:
        return False
    version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
    return version is None or version in HANDSHAKE_PROTOCOL_VERSIONS


def too_many_sessions(limit: int) -> Response:
    """The answer to a principal asking for a session past its bound: ``429``, a JSON-RPC
    ``-32600`` error naming the bound (``null`` id, as the SDK's own ``503`` at
    ``server.max_sessions``)."""
    message = (
        f"Too many open sessions: this principal already holds {limit}, the most "
        "server.max_sessions_per_principal allows; end one (DELETE it, or close an SSE stream) "
        "or wait until one idles out"
    )
    error = {"code": types.INVALID_REQUEST, "message": message, "data": {"max_sessions_per_principal": limit}}
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error}, status_code=429)


class SessionsPerPrincipal:
    """Pure ASGI middleware holding each request that ``opens_session`` to its principal's
    bound in ``ledger``. A request past the bound is answered by :func:`too_many_sessions` and never
    reaches ``app``; one whose answer starts below ``400`` with an ``mcp-session-id`` keeps
    its place for that session, any other gives it back when it has been served."""

    def __init__(
        self,
        app: ASGIApp,
        ledger: SessionLedger,
        opens_session: Callable[[Scope], bool] = lambda scope: True,
    ) -> None:
        self.app = app
        self.ledger = ledger
        self.opens_session = opens_session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.opens_session(scope):
            await self.app(scope, receive, send)
            return
        principal = principal_in(scope)
        key = None if principal is None else principal.key
        claim = self.ledger.claim(key)
        if claim is None:
            logger.warning(
                "refused %s another session: it holds %d, the most server.max_sessions_per_principal allows",
                principal.user if principal is not None else "an unidentified client",
                self.ledger.limit,
            )
            await too_many_sessions(self.ledger.limit)(scope, receive, send)
            return

        async def noting_the_session(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                claim.session_id = Headers(raw=message.get("headers", [])).get(MCP_SESSION_ID_HEADER)
            await send(message)

        try:
            await self.app(scope, receive, noting_the_session)
        finally:
            if claim.session_id is None:
                self.ledger.release(key, claim)
