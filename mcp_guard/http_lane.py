"""``tools/call`` over streamable HTTP without the SDK's session: the call path's first hop.

Through the SDK a call POST crosses the session manager, the transport, memory streams,
a dispatcher task and a request context before the gateway sees it, and an
``EventSourceResponse`` (a writer task, a ping task, a disconnect listener) on the way
back: about twice the CPU the same call costs over stdio. :class:`HttpCallLane` sits in
front of the SDK's ``/mcp`` app and answers a POST itself only when it is one the SDK
would serve as a call:

- a single JSON-RPC request (not a batch) with method ``tools/call``,
- of a handshake-era session (2025-11-25 and before) the SDK's session manager holds,
  that the client confirmed with ``notifications/initialized``, for the credential that
  opened it (``mcp-protocol-version``, if sent, a handshake-era version),
- passing every check the SDK's transport makes: body size, Host/Origin (DNS rebinding),
  ``Content-Type``, ``Accept``.

Anything else (another method, a notification, a batch, a stateless or 2026-07-28 request,
a request that fails a check) goes to the SDK untouched, the body the lane read replayed,
so the SDK gives its own answer or error. So does a ``notifications/cancelled`` unless it
names a call the lane runs: that call is cancelled and the notification answered ``202``.

The lane answers as the SDK would in its mode (``server.json_responses``): the same status
and headers, one SSE ``message`` event (progress events before it, for a progress token)
or one JSON body; the same parameter validation, result shaping and errors for the
session's negotiated protocol version (:func:`mcp_guard.call_answer.answer_call`), the same
principal, session id and client info handed to :meth:`Gateway.call_tool`. A call the
client cancels is answered with the SDK's ``-32800 Request cancelled``; a call whose client
drops the POST is cancelled and answered to nobody, as the SDK path does
(:func:`mcp_guard.server._until_the_client_leaves`). While a call runs it holds its session
open against the idle timeout, as a request the SDK serves does.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import pydantic_core
from mcp import types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_SSE,
    MCP_SESSION_ID_HEADER,
    REQUEST_CANCELLED,
    StreamableHTTPServerTransport,
    check_accept_headers,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_guard.call_answer import METHOD, Call, answer_call, error_answer
from mcp_guard.gateway import Gateway
from mcp_guard.principal import Principal

logger = logging.getLogger(__name__)

PING_INTERVAL_S = 15.0
"""How often an SSE answer still waiting for its call sends a keep-alive comment (sse_starlette's default)."""
_CANCELLED = "notifications/cancelled"
_SESSION_ID_HEADER = MCP_SESSION_ID_HEADER.encode()
_JSON_CONTENT_TYPE = (b"content-type", CONTENT_TYPE_JSON.encode())
_SSE_HEADERS = (
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", CONTENT_TYPE_SSE.encode()),
)


class HttpCallLane:
    """Pure ASGI middleware in front of the SDK's streamable-HTTP app (``app``, served by
    ``manager``); see the module docstring. :meth:`note_initialized` opens the lane for a
    session (``build_server``'s ``on_initialized``)."""

    def __init__(
        self,
        app: ASGIApp,
        gateway: Gateway,
        manager: StreamableHTTPSessionManager,
        principal_of: Callable[[Scope], Principal | None],
        *,
        security: TransportSecuritySettings,
        max_body_bytes: int,
        json_responses: bool,
        server_info: dict[str, Any],
    ) -> None:
        """``principal_of``: the principal of a request, from its ASGI scope, as the SDK path
        resolves it. ``server_info``: the SDK server's ``server_info_stamp``."""
        self.app = app
        self._gateway = gateway
        self._manager = manager
        self._principal_of = principal_of
        self._security = TransportSecurityMiddleware(security)
        self._max_body_bytes = max_body_bytes
        self._json = json_responses
        self._server_info = server_info
        self._sessions: dict[str, Connection] = {}
        """The SDK's connection of each session the client confirmed: its negotiated version and client."""
        self._in_flight: dict[tuple[str, types.RequestId], _Flight] = {}

    def note_initialized(self, ctx: ServerRequestContext[Any, Any]) -> None:
        """A client confirmed its session: the lane takes its calls from now on."""
        request = ctx.request
        connection = getattr(ctx.session, "_connection", None)  # the SDK keeps no public accessor
        session_id = request.headers.get(MCP_SESSION_ID_HEADER) if request is not None else None
        if session_id is None or not isinstance(connection, Connection):
            return
        if len(self._sessions) >= len(self._manager._server_instances):  # forget sessions the SDK ended
            for stale in [sid for sid in self._sessions if sid not in self._manager._server_instances]:
                del self._sessions[stale]
        self._sessions[session_id] = connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            if scope["type"] == "http" and scope["method"] == "DELETE":
                self._end_calls_of_ended_sessions()
            return
        request = Request(scope)  # its headers, parsed once, serve every check below
        headers = request.headers
        session_id = headers.get(MCP_SESSION_ID_HEADER)
        connection = self._sessions.get(session_id) if session_id is not None else None
        transport = self._served_transport(scope, headers, session_id) if connection is not None else None
        if session_id is None or connection is None or transport is None:
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive, self._max_body_bytes)
        message = _parsed(body) if body is not None else None
        if message is None or not await self._passes_checks(request):
            await self.app(scope, replay, send)
            return
        if message.get("method") == _CANCELLED and "id" not in message:
            if self._cancel(session_id, message.get("params")):
                await _send_empty(send, 202, session_id)
                return
        elif "id" in message and message.get("method") == METHOD:
            key = (session_id, coerce_request_id(message["id"]))
            if key not in self._in_flight:  # a second call with the id of one in flight: the SDK's
                await self._serve(
                    scope, receive, send, transport=transport, connection=connection, key=key, message=message
                )
                return
        await self.app(scope, replay, send)

    def _served_transport(
        self, scope: Scope, headers: Headers, session_id: str | None
    ) -> StreamableHTTPServerTransport | None:
        """The transport of a handshake-era session the SDK serves to this credential, else None."""
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if session_id is None or (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS):
            return None
        if self._manager.stateless:
            return None
        transport = self._manager._server_instances.get(session_id)  # the SDK keeps no public accessor
        if transport is None:
            self._sessions.pop(session_id, None)
            return None
        user = scope.get("user")
        requestor = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        if requestor != self._manager._session_owners.get(session_id):
            return None  # the SDK answers 404, as for a session that does not exist
        idle = transport.idle_scope
        if transport.is_terminated or (idle is not None and idle.cancel_called):
            return None
        return transport

    async def _passes_checks(self, request: Request) -> bool:
        """Whether the SDK's transport would accept this POST: Host/Origin and Content-Type
        (its security middleware), Accept for the response mode, Content-Type again (its own
        test). They read the request's headers alone, never its body."""
        if await self._security.validate_request(request, is_post=True) is not None:
            return False
        has_json, has_sse = check_accept_headers(request)
        if not (has_json if self._json else has_json and has_sse):
            return False
        content_type = request.headers.get("content-type", "")
        return any(part.strip() == CONTENT_TYPE_JSON for part in content_type.split(";")[0].split(","))

    def _end_calls_of_ended_sessions(self) -> None:
        """A client ended its session (DELETE): its calls in flight end as the SDK ends the
        requests of a session it terminates (:meth:`_Response.session_ended`)."""
        for (session_id, _), flight in self._in_flight.items():
            if session_id not in self._manager._server_instances:
                flight.session_ended = True
                flight.scope.cancel()

    def _cancel(self, session_id: str, params: object) -> bool:
        request_id = cancelled_request_id_from_params(params if isinstance(params, dict) else None)
        flight = (
            self._in_flight.get((session_id, coerce_request_id(request_id)))
            if request_id is not None
            else None
        )
        if flight is None:
            return False
        flight.scope.cancel()
        return True

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        transport: StreamableHTTPServerTransport,
        connection: Connection,
        key: tuple[str, types.RequestId],
        message: dict[str, Any],
    ) -> None:
        session_id = key[0]
        client = connection.client_params
        client_info = client.client_info.model_dump(mode="json") if client and client.client_info else None
        call = Call(message["id"], message.get("params"), connection.protocol_version, client_info)
        response = _Response(send, session_id, sse=not self._json)

        def principal() -> Principal:
            found = self._principal_of(scope)
            if found is None:  # as the SDK path refuses it (server.py)
                raise MCPError(code=types.INVALID_REQUEST, message="unauthenticated request")
            return found

        flight = _Flight()
        self._in_flight[key] = flight
        try:
            with _holding_open(transport):
                await response.start()
                answer: dict[str, Any] | None = None
                async with anyio.create_task_group() as tg:
                    tg.start_soon(response.watch, receive, tg.cancel_scope)
                    with flight.scope:
                        answer = await answer_call(
                            self._gateway,
                            principal,
                            session_id,
                            call,
                            server_info=self._server_info,
                            send=response.event,
                        )
                    if flight.session_ended:
                        await response.session_ended()
                    else:
                        if answer is None:  # the client cancelled it: the SDK's answer on this era's wire
                            error = types.ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
                            answer = error_answer(call.request_id, error)
                        await response.finish(answer)
                    tg.cancel_scope.cancel()
        except Exception:  # fail closed: the SDK transport's answer to a POST it failed on
            logger.exception("%s %r failed in the HTTP lane", METHOD, call.request_id)
            await response.fail()
        finally:
            del self._in_flight[key]


@dataclass(eq=False)
class _Flight:
    """A call the lane runs: cancelled by the client, or by the end of its session."""

    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    session_ended: bool = False


class _Response:
    """One call's HTTP answer, shaped as the SDK's transport shapes it: an SSE stream of
    ``message`` events, or one JSON body."""

    def __init__(self, send: Send, session_id: str, *, sse: bool) -> None:
        self._send = send
        self._session_id = session_id.encode()
        self._sse = sse
        self._started = False
        self._done = False
        self._writing = anyio.Lock(fast_acquire=True)  # no trip round the event loop when nobody else writes

    async def start(self) -> None:
        if self._sse:  # the SDK's EventSourceResponse answers before the call ends
            headers = [*_SSE_HEADERS, (_SESSION_ID_HEADER, self._session_id), (b"x-accel-buffering", b"no")]
            await self._write({"type": "http.response.start", "status": 200, "headers": headers})

    async def event(self, message: dict[str, Any]) -> None:
        """A message before the answer (progress): an event on the stream; nowhere in JSON mode."""
        if self._sse:
            await self._write(_body(_sse_event(message), more=True))

    async def finish(self, answer: dict[str, Any]) -> None:
        if self._sse:  # the last event and the stream's end in one write: the same bytes
            await self._write(_body(_sse_event(answer), more=False))
        else:
            await self._json(200, pydantic_core.to_json(answer))
        self._done = True

    async def session_ended(self) -> None:
        """The SDK's answer to a call whose session ended while it ran: its SSE stream ends
        without one, a JSON answer is a ``500``."""
        if self._sse:
            await self._write(_body(b"", more=False))
        else:
            message = "Session terminated before the request completed"
            error = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": types.INTERNAL_ERROR, "message": message},
            }
            await self._json(500, pydantic_core.to_json(error))
        self._done = True

    async def fail(self) -> None:
        """The SDK transport's ``500`` for a POST it failed on; only a line closing the
        stream once an SSE answer has begun."""
        if self._done:
            return
        with contextlib.suppress(Exception):  # the client may be gone
            await self._fail()

    async def _fail(self) -> None:
        error = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": types.INTERNAL_ERROR, "message": "Error handling POST request"},
        }
        if self._started:
            await self._write(_body(b"", more=False))
        else:
            await self._json(500, pydantic_core.to_json(error))

    async def watch(self, receive: Receive, call: anyio.CancelScope) -> None:
        """Cancel ``call`` when the client drops the POST; keep an SSE stream alive meanwhile."""
        while True:
            with anyio.move_on_after(PING_INTERVAL_S if self._sse else math.inf):
                while (await receive())["type"] != "http.disconnect":
                    pass
                if self._done:  # uvicorn reports a request it has answered as disconnected
                    return
                logger.info("the client dropped its request; cancelling the call")
                call.cancel()
                return
            if not self._done:
                await self._write(_body(f": ping - {datetime.now(UTC)}\r\n\r\n".encode(), more=True))

    async def _json(self, status: int, body: bytes) -> None:
        headers = [
            _JSON_CONTENT_TYPE,
            (_SESSION_ID_HEADER, self._session_id),
            (b"content-length", str(len(body)).encode()),
        ]
        await self._write({"type": "http.response.start", "status": status, "headers": headers})
        await self._write(_body(body, more=False))

    async def _write(self, message: Message) -> None:
        async with self._writing:
            if message["type"] == "http.response.start":
                self._started = True
            await self._send(message)


def _sse_event(message: dict[str, Any]) -> bytes:
    return b"event: message\r\ndata: " + pydantic_core.to_json(message) + b"\r\n\r\n"


def _body(data: bytes, *, more: bool) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def _send_empty(send: Send, status: int, session_id: str) -> None:
    """The SDK transport's answer to a notification: no body."""
    headers = [
        _JSON_CONTENT_TYPE,
        (_SESSION_ID_HEADER, session_id.encode()),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(_body(b"", more=False))


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The whole body (None if it is over ``limit`` or the client left while sending it),
    and a ``receive`` that replays what was read, then reads on."""
    chunks: list[bytes] = []
    size = 0
    read: deque[Message] = deque()
    complete = False
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            break
        if not message.get("more_body", False):
            complete = True
            break

    async def replay() -> Message:
        return read.popleft() if read else await receive()

    return (b"".join(chunks) if complete else None), replay


def _parsed(body: bytes) -> dict[str, Any] | None:
    """The message, if the SDK reads ``body`` as one JSON-RPC request (with a string or
    integer id) or notification (without one); :mod:`mcp_guard.malformed` answers the rest."""
    try:
        raw = pydantic_core.from_json(body)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("params", {}), dict):
        return None
    try:
        message = types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:
        return None
    if "id" in raw:
        return (
            raw
            if isinstance(message, types.JSONRPCRequest) and as_request_id(raw["id"]) is not None
            else None
        )
    return raw if isinstance(message, types.JSONRPCNotification) else None


@contextmanager
def _holding_open(transport: StreamableHTTPServerTransport) -> Iterator[None]:
    """The session stays open while the call runs and its idle countdown restarts after,
    as :meth:`StreamableHTTPServerTransport.handle_request` does for a request it serves."""
    idle, timeout = transport.idle_scope, transport._idle_timeout  # the SDK keeps no public accessor
    if idle is None or timeout is None:
        yield
        return
    transport._requests_in_flight += 1
    idle.deadline = math.inf
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            idle.deadline = anyio.current_time() + timeout
