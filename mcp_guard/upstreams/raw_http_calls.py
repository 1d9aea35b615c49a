"""``tools/call`` to a streamable-HTTP upstream as one POST of the gateway's own.

The SDK's streamable-HTTP client sends each request through its session, a dispatcher,
a POST-writer task and memory streams both ways, parsing the answer into models on the
way; against the demo bank over HTTP that is about 2 ms of a call's time
(``docs/benchmarks.md``). Here the calling task POSTs its ``tools/call`` with the
session's id and negotiated protocol version (what the SDK's transport sends) and
reads the answer from the response itself: a JSON body, or an SSE stream carrying
progress for the call and then its answer.

The POST goes through ``aiohttp``, whose HTTP/1.1 parser is C, rather than the SDK's
``httpx``: a bare POST and SSE read costs ~0.2 ms of CPU where ``httpx`` takes ~0.55 ms,
and the whole hop about half what it did (``docs/benchmarks.md``). Its SSE stream is read by
``httpx``'s own ``EventSource``, so events are parsed and bounded exactly as the SDK's
client parses them. The SDK's transport (``initialize``, lists, the GET stream) keeps
its ``httpx`` client; both send the upstream's configured headers.

Anything else the upstream sends on that stream (a ``list_changed`` notification, a
request of its own such as sampling) is handed to the SDK session, as if it had come
through the SDK's transport. A stream that ends or breaks before the answer is resumed
as the SDK's client resumes it (SSE polling, 2025-11-25): after the server's ``retry``
interval, a GET with ``Last-Event-ID`` picks up the call's stream where it stopped. A
307/308 redirect within the upstream's origin is followed (as the SDK's client follows
it), and the connection's calls go to the new address from then on; any other redirect
fails the call, saying where the upstream pointed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeGuard

import aiohttp
import anyio
import httpx2
import pydantic_core
from aiohttp.http_exceptions import HttpProcessingError
from anyio.abc import TaskGroup
from mcp import types
from mcp.client.streamable_http import (
    DEFAULT_RECONNECTION_DELAY_MS,
    LAST_EVENT_ID,
    MAX_RECONNECTION_ATTEMPTS,
    MCP_SESSION_ID,
)
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from yarl import URL

from mcp_guard.errors import UpstreamUnavailableError
from mcp_guard.upstreams.raw_calls import (
    CANCEL_WRITE_TIMEOUT_S,
    ID_PREFIX,
    call_result,
    cancel_bytes,
    progress_params,
    report_progress,
    request_bytes,
)

logger = logging.getLogger(__name__)

Deliver = Callable[[SessionMessage], Awaitable[None]]
DRAIN_S = 0.01
"""How long the rest of a call's SSE stream may take to end after its answer (see :func:`_finish`)."""
SESSION_LOST = "the upstream no longer knows the gateway's session (HTTP 404: it restarted or expired it)"
ANSWER_LOST = f"{SESSION_LOST}; the call ran, its answer is lost"
POST_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
RESUME_HEADERS = {"accept": "text/event-stream"}


MAX_REDIRECTS = 5


class _Redirected(Exception):
    """The upstream answered a call's POST with a redirect; nothing reached the tool."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(status, location)
        self.status, self.location = status, location


class SessionLostError(UpstreamUnavailableError):
    """The upstream answered 404 to a call carrying the gateway's session: it no longer
    knows the session, and did not process the call."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, f"{SESSION_LOST}; reconnecting")


@dataclass
class _Exchange:
    """One request's response, and what is left of its SSE stream once the call's answer
    has been read from it (None: nothing left to read, or not a stream)."""

    response: aiohttp.ClientResponse
    rest: AsyncIterator[httpx2.ServerSentEvent] | None = None


@dataclass
class _Cursor:
    """Where a call's SSE stream has got to: what a resumption asks for, and when."""

    last_event_id: str | None = None
    retry_ms: int | None = None


class RawHttpCalls:
    """The ``tools/call`` path of one streamable-HTTP connection.

    ``deliver`` hands a message the upstream sent on a call's stream to the SDK session;
    ``session_lost`` is set when the upstream forgets the session (the connection's
    :class:`~mcp_guard.upstreams.raw_calls.Link` owns it).
    :meth:`note_response` must see the responses of the SDK's ``httpx`` client (an event
    hook) to learn the session id; ``protocol_version`` is set once ``initialize`` is done.
    ``client`` carries the calls themselves.
    """

    def __init__(
        self,
        upstream: str,
        client: aiohttp.ClientSession,
        url: str,
        max_message_bytes: int,
        deliver: Deliver,
        *,
        session_lost: anyio.Event,
        background: TaskGroup,
    ) -> None:
        self.upstream = upstream
        self._client = client
        self._endpoint = URL(url)
        self._sse_request = httpx2.Request("POST", url)  # what EventSource names in its errors
        self._limit = max_message_bytes
        self._deliver = deliver
        self._ids = itertools.count(1)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.session_lost = session_lost
        self._background = background
        self._post_headers: tuple[tuple[str | None, str | None], dict[str, str]] | None = None

    async def note_response(self, response: httpx2.Response) -> None:
        """The session id the upstream assigned (the first one its responses carry, as the
        SDK keeps it), and whether the upstream has since forgotten it: a 404 to a request
        that carried it (the upstream restarted, or expired the session) sets
        :attr:`session_lost`, on the SDK's requests as on the gateway's own."""
        if self.session_id is None:
            self.session_id = response.headers.get(MCP_SESSION_ID) or None
        elif response.status_code == 404:
            self._note_not_found(response.request.headers.get(MCP_SESSION_ID))

    def _note_not_found(self, sent_session_id: str | None) -> None:
        """A 404 to a request that carried the session's id: the upstream forgot the session."""
        if sent_session_id is not None and sent_session_id == self.session_id:
            self.session_lost.set()

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        meta: Mapping[str, Any] | None,
        on_progress: ProgressFnT | None,
    ) -> types.CallToolResult:
        """POST one ``tools/call`` and read its answer; cancelling the caller cancels it upstream.

        Raises:
            UpstreamUnavailableError: the upstream cannot be reached.
            SessionLostError: the upstream no longer knows the session (the call was not processed).
            MCPError: the upstream answered with a JSON-RPC error, an HTTP error, a
                stream that ended without an answer, or an answer over ``max_message_bytes``.
            ValidationError: the answer is not a valid ``CallToolResult`` or error.
        """
        self._check_open()
        ident = f"{ID_PREFIX}{next(self._ids)}"
        body = request_bytes(ident, name, arguments, meta, progress=on_progress is not None)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    post = self._client.post(
                        self._endpoint, data=body, headers=self._call_headers(), allow_redirects=False
                    )
                    async with self._exchange(post) as exchange:
                        answer = await self._answer(ident, exchange, on_progress)
                    break
                except _Redirected as moved:
                    self._endpoint = self._follow(moved)
            else:
                raise MCPError(code=types.INVALID_REQUEST, message=f"more than {MAX_REDIRECTS} redirects")
        except aiohttp.ClientConnectionError as exc:  # a connect timeout included
            unreachable = f"cannot reach {self._endpoint}: {str(exc) or type(exc).__name__}"
            raise UpstreamUnavailableError(self.upstream, unreachable) from None
        except aiohttp.ClientError as exc:  # e.g. a body its Content-Encoding does not describe
            unreadable = f"its answer could not be read: {_why(exc)}"
            raise MCPError(code=types.INTERNAL_ERROR, message=unreadable) from None
        except anyio.get_cancelled_exc_class():
            await self._cancel_upstream(ident)
            raise
        return call_result(answer)

    @asynccontextmanager
    async def _exchange(self, request: Awaitable[aiohttp.ClientResponse]) -> AsyncIterator[_Exchange]:
        """The response to ``request``; afterwards its connection goes back to the pool for
        the next call if its body was read to the end, or is closed if the exchange failed.
        When what is left is the end of a call's SSE stream (the SDK's server ends it
        0.1 to 0.3 ms after the answer), it is read in the background: the call need not wait."""
        exchange = _Exchange(await request)
        try:
            yield exchange
        except BaseException:
            exchange.response.close()
            raise
        if exchange.rest is None:
            exchange.response.release()  # back to the pool if read to its end, closed if not
        else:
            try:
                self._background.start_soon(_finish, exchange.response, exchange.rest)
            except RuntimeError:  # the connection is ending: its task group takes no more tasks
                exchange.response.close()

    def _follow(self, moved: _Redirected) -> URL:
        """Where a redirect leads, if it is one to follow.

        Raises:
            MCPError: not a 307/308 (which keep the POST as it was), or to another origin.
        """
        here = self._endpoint
        try:
            target = here.join(URL(moved.location))
            same_origin = target.absolute and target.origin() == here.origin()
        except ValueError:  # not a URL
            same_origin = False
        if moved.status in (307, 308) and same_origin:
            logger.info("upstream %s moved its endpoint to %s (HTTP %s)", self.upstream, target, moved.status)
            return target
        raise MCPError(
            code=types.INVALID_REQUEST,
            message=f"redirected the call (HTTP {moved.status}) to {moved.location or 'nowhere'}; only "
            "307/308 redirects within its origin are followed: point its url there",
        )

    def _check_open(self) -> None:
        """Raises: UpstreamUnavailableError — the connection has ended (its HTTP client is closed)."""
        if self._client.closed:
            raise UpstreamUnavailableError(self.upstream, "the connection closed")

    def _call_headers(self) -> dict[str, str]:
        """:meth:`_headers` for a call's POST, built once per session id and protocol version."""
        known = (self.session_id, self.protocol_version)
        if self._post_headers is None or self._post_headers[0] != known:
            self._post_headers = (known, self._headers())
        return self._post_headers[1]

    def _headers(self, fixed: Mapping[str, str] = POST_HEADERS) -> dict[str, str]:
        """``fixed`` plus the session's id and protocol version, once known."""
        headers = dict(fixed)
        if self.session_id:
            headers[MCP_SESSION_ID] = self.session_id
        if self.protocol_version:
            headers[MCP_PROTOCOL_VERSION_HEADER] = self.protocol_version
        return headers

    async def _answer(
        self, ident: str, exchange: _Exchange, on_progress: ProgressFnT | None
    ) -> dict[str, Any]:
        """The answer to ``ident`` from the exchange's response, with the SDK client's
        reading of each status."""
        response = exchange.response
        status = response.status
        content_type = response.headers.get("content-type", "").lower()
        if 300 <= status < 400:
            raise _Redirected(status, response.headers.get("location", ""))
        if status == 202:
            raise MCPError(code=types.INVALID_REQUEST, message="server answered a request with 202 Accepted")
        if status == 404 and self.session_id is not None:
            self._note_not_found(response.request_info.headers.get(MCP_SESSION_ID))
            raise SessionLostError(self.upstream)
        if status >= 400:
            if content_type.startswith("application/json"):
                with suppress(ValueError):
                    message = pydantic_core.from_json(await self._body(response))
                    if isinstance(message, dict) and isinstance(message.get("error"), dict):
                        return {"error": message["error"]}
            if status == 404:
                raise MCPError(code=types.METHOD_NOT_FOUND, message="Not Found")
            raise MCPError(code=types.INTERNAL_ERROR, message="Server returned an error response")
        if content_type.startswith("application/json"):
            message = _parse(await self._body(response))
            if _answers(message, ident):
                return message
            raise MCPError(code=types.INTERNAL_ERROR, message="the JSON response does not answer the request")
        if content_type.startswith("text/event-stream"):
            return await self._from_events(ident, exchange, on_progress)
        raise MCPError(code=types.INVALID_REQUEST, message=f"Unexpected content type: {content_type}")

    async def _from_events(
        self, ident: str, exchange: _Exchange, on_progress: ProgressFnT | None
    ) -> dict[str, Any]:
        """The answer from the call's SSE stream, resuming the stream (as the SDK's client
        does) when it ends or breaks after an event with an id and before the answer."""
        cursor = _Cursor()
        answer = await self._read_events(ident, exchange, on_progress, cursor)
        fruitless = 0  # resumptions in a row that brought no new event
        while answer is None:
            if cursor.last_event_id is None:
                raise MCPError(code=types.CONNECTION_CLOSED, message="SSE stream ended without a response")
            if fruitless >= MAX_RECONNECTION_ATTEMPTS:
                raise MCPError(
                    code=types.CONNECTION_CLOSED,
                    message="SSE stream ended and reconnection attempts were exhausted",
                )
            resumed_at = cursor.last_event_id
            answer = await self._resume(ident, on_progress, cursor)
            fruitless = 0 if cursor.last_event_id != resumed_at else fruitless + 1
        return answer

    async def _read_events(
        self, ident: str, exchange: _Exchange, on_progress: ProgressFnT | None, cursor: _Cursor
    ) -> dict[str, Any] | None:
        """The answer to ``ident`` from one SSE response; None if the stream ended (or
        broke, once resumable) before it. Progress for the call goes to ``on_progress``,
        everything else to the SDK session; the events after the answer are left in
        ``exchange.rest``."""
        source = httpx2.EventSource(self._as_httpx(exchange.response), max_event_size=self._limit)
        events = aiter(source)
        try:
            async for event in events:
                cursor.last_event_id = event.id or cursor.last_event_id
                cursor.retry_ms = event.retry if event.retry is not None else cursor.retry_ms
                if event.event != "message" or not event.data:
                    continue  # a priming event, or one this client does not know
                message = _parse(event.data)
                if _answers(message, ident):
                    exchange.rest = events
                    return message
                params = progress_params(message)
                if params is not None and params["progressToken"] == ident:
                    if on_progress is not None:
                        await report_progress(on_progress, params)
                    continue
                await self._to_session(message)
        except httpx2.SSEError as exc:
            raise MCPError(code=types.CONNECTION_CLOSED, message=f"SSE stream failed: {exc}") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            if cursor.last_event_id is None:
                raise UpstreamUnavailableError(self.upstream, f"the call's stream broke: {exc}") from None
            logger.info("upstream %s: a call's SSE stream broke; resuming it", self.upstream)
        return None

    def _as_httpx(self, response: aiohttp.ClientResponse) -> httpx2.Response:
        """``response`` for ``httpx2.EventSource``: its content type, and its body as aiohttp
        reads it (already decompressed, so no ``Content-Encoding`` is passed on)."""
        return httpx2.Response(
            response.status,
            headers={"content-type": response.headers.get("content-type", "")},
            stream=_ByteStream(response),
            request=self._sse_request,
        )

    async def _resume(
        self, ident: str, on_progress: ProgressFnT | None, cursor: _Cursor
    ) -> dict[str, Any] | None:
        """After the server's retry interval, GET the call's stream from ``cursor`` on;
        the answer if it came."""
        assert cursor.last_event_id is not None
        delay_ms = cursor.retry_ms if cursor.retry_ms is not None else DEFAULT_RECONNECTION_DELAY_MS
        await anyio.sleep(delay_ms / 1000)
        headers = self._headers({**RESUME_HEADERS, LAST_EVENT_ID: cursor.last_event_id})
        if self._client.closed:  # the connection ended while we waited
            raise UpstreamUnavailableError(
                self.upstream, "the connection closed before the call's answer came"
            )
        try:
            get = self._client.get(self._endpoint, headers=headers, allow_redirects=False)
            async with self._exchange(get) as exchange:
                response = exchange.response
                content_type = response.headers.get("content-type", "").lower()
                if response.status == 404:  # the call ran, its answer is gone: never sent again
                    self._note_not_found(headers.get(MCP_SESSION_ID))
                    raise UpstreamUnavailableError(self.upstream, ANSWER_LOST)
                if response.status != 200 or not content_type.startswith("text/event-stream"):
                    logger.info(
                        "upstream %s: resuming a call's SSE stream got HTTP %s (%s)",
                        self.upstream,
                        response.status,
                        content_type or "no content type",
                    )
                    return None
                return await self._read_events(ident, exchange, on_progress, cursor)
        except aiohttp.ClientError as exc:
            logger.info("upstream %s: resuming a call's SSE stream failed: %s", self.upstream, exc)
            return None

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        """The response body, refused as soon as it passes ``max_message_bytes``."""
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > self._limit:
                raise MCPError(
                    code=types.INTERNAL_ERROR,
                    message=f"upstream '{self.upstream}' sent an answer larger than {self._limit} bytes "
                    "(max_message_bytes)",
                )
        return bytes(body)

    async def _to_session(self, message: Any) -> None:
        try:
            parsed = types.jsonrpc_message_adapter.validate_python(message, by_name=False)
        except ValidationError as exc:
            why = exc.errors()[0]["msg"]
            logger.warning("upstream %s: dropped a message that is not JSON-RPC: %s", self.upstream, why)
            return
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._deliver(SessionMessage(parsed))

    async def _cancel_upstream(self, ident: str) -> None:
        """``notifications/cancelled`` as a POST of its own, shielded, best effort."""
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(CANCEL_WRITE_TIMEOUT_S),
            suppress(aiohttp.ClientError),
        ):
            async with self._client.post(
                self._endpoint, data=cancel_bytes(ident), headers=self._headers(), allow_redirects=False
            ):
                pass


class _ByteStream(httpx2.AsyncByteStream):
    """An aiohttp response body as httpx reads a stream."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk


async def _finish(response: aiohttp.ClientResponse, rest: AsyncIterator[httpx2.ServerSentEvent]) -> None:
    """Read a call's SSE stream to its end, which the server sends right after the answer,
    and let the response go: one read to its end gives its connection back to the pool for
    the next call, where one left unread is closed. A server that keeps the stream open
    gets :data:`DRAIN_S`. Events after the answer are dropped, as the SDK's client drops
    them once its request is answered."""
    try:
        with anyio.move_on_after(DRAIN_S):
            async for _ in rest:
                pass
    except (aiohttp.ClientError, httpx2.SSEError):
        pass  # the answer is in; the connection is closed below
    finally:
        response.release()


def _why(exc: aiohttp.ClientError) -> str:
    """What went wrong reading a response: the HTTP parser's own complaint when it had one
    (aiohttp wraps it in a ``ClientPayloadError`` with the parser's status-line formatting)."""
    cause = exc.__cause__
    if isinstance(cause, HttpProcessingError):
        return f"{type(cause).__name__}: {cause.message}"
    return f"{type(exc).__name__}: {exc}"


def _parse(data: bytes | str) -> Any:
    """Raises: MCPError — not JSON (the SDK's reading: a parse error answers the request)."""
    try:
        return pydantic_core.from_json(data)
    except ValueError as exc:
        raise MCPError(code=types.PARSE_ERROR, message=f"Failed to parse the answer: {exc}") from None


def _answers(message: Any, ident: str) -> TypeGuard[dict[str, Any]]:
    return isinstance(message, dict) and message.get("id") == ident and "method" not in message
