"""Opening a client session to one upstream over stdio, SSE or streamable HTTP."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
import anyio
import httpx2
from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
from mcp import ClientSession, types
from mcp.client.session import MessageHandlerFnT
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import SessionMessage
from yarl import URL

from mcp_guard import __version__
from mcp_guard.upstreams.config import HttpUpstream, UpstreamConfig
from mcp_guard.upstreams.raw_calls import Link
from mcp_guard.upstreams.raw_http_calls import SESSION_LOST, RawHttpCalls
from mcp_guard.upstreams.reaper import Reaper
from mcp_guard.upstreams.stdio import bounded_stdio_client

CLIENT_INFO = types.Implementation(name="mcp-guard", version=__version__)


class WatchedReadStream:
    """Delegates to a transport's read stream and sets ``closed`` when it ends.

    The dispatcher reads until end-of-stream; this is how the supervisor learns
    that an upstream went away (process exit, dropped HTTP stream).
    """

    def __init__(self, inner: ReadStream[SessionMessage | Exception]) -> None:
        self._inner = inner
        self.closed = anyio.Event()

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.closed.set()
            raise

    async def aclose(self) -> None:
        self.closed.set()
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass
class Connection:
    """A live, initialized session to an upstream."""

    session: ClientSession
    dispatcher: JSONRPCDispatcher[Any]
    closed: anyio.Event
    initialize: types.InitializeResult
    link: Link


@asynccontextmanager
async def connect(
    name: str, config: UpstreamConfig, message_handler: MessageHandlerFnT, reaper: Reaper | None = None
) -> AsyncIterator[Connection]:
    """Open the transport, start a session and run the initialize handshake.

    Must be entered and exited in the same task (the supervisor's).

    Raises:
        OSError: the process could not be started or the server not reached.
        MCPError: the upstream refused the handshake.
    """
    link = Link(name)
    async with AsyncExitStack() as stack:
        if isinstance(config, HttpUpstream):
            streams = await stack.enter_async_context(_http_streams(name, config, link))
        else:
            streams = await stack.enter_async_context(bounded_stdio_client(name, config, link, reaper))
        read, write = streams
        watched = WatchedReadStream(read)
        dispatcher: JSONRPCDispatcher[Any] = JSONRPCDispatcher(watched, write)
        session = await stack.enter_async_context(
            ClientSession(dispatcher=dispatcher, message_handler=message_handler, client_info=CLIENT_INFO)
        )
        result = await session.initialize()
        if isinstance(link.calls, RawHttpCalls):
            link.calls.protocol_version = result.protocol_version
        yield Connection(
            session=session, dispatcher=dispatcher, closed=watched.closed, initialize=result, link=link
        )


@asynccontextmanager
async def _http_streams(name: str, config: HttpUpstream, link: Link) -> AsyncIterator[Any]:
    """The SDK's SSE or streamable-HTTP transport; streamable HTTP also gets the raw
    ``tools/call`` path (``raw_http_calls.py``), whose stray messages join the transport's."""
    if config.type == "sse":
        async with sse_client(
            config.url, headers=dict(config.headers), timeout=config.connect_timeout_s
        ) as s:
            yield s
        return
    timeout = httpx2.Timeout(config.connect_timeout_s, read=None)
    trust = httpx2.create_ssl_context()  # loading the trust store takes 20-80 ms: once for both clients
    to_session, from_upstream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    async with (
        httpx2.AsyncClient(headers=dict(config.headers), timeout=timeout, verify=trust) as client,
        _calls_client(config, trust) as calls_client,
        streamable_http_client(
            config.url, http_client=client, max_sse_event_size=config.max_message_bytes
        ) as (read, write),
        anyio.create_task_group() as tg,
    ):
        limit, lost = config.max_message_bytes, link.session_lost
        calls = RawHttpCalls(
            name, calls_client, config.url, limit, to_session.send, session_lost=lost, background=tg
        )
        client.event_hooks = {"response": [calls.note_response]}
        link.calls = calls
        relaying = anyio.CancelScope()

        async def relay() -> None:
            """The transport's messages to the session; its end ends the session's stream."""
            with relaying:
                async with to_session:
                    while True:
                        try:
                            message = await read.receive()
                        except (anyio.EndOfStream, anyio.ClosedResourceError):
                            return
                        await to_session.send(message)

        async def end_when_the_session_is_lost() -> None:
            """A session the upstream has forgotten cannot be used again (the spec: start a new
            one): end the connection, so the supervisor makes a new one."""
            await link.session_lost.wait()
            link.close_reason = SESSION_LOST
            relaying.cancel()

        tg.start_soon(relay)
        tg.start_soon(end_when_the_session_is_lost)
        yield from_upstream, write
        tg.cancel_scope.cancel()


def _calls_client(config: HttpUpstream, trust: ssl.SSLContext) -> aiohttp.ClientSession:
    """The HTTP client of the gateway's own ``tools/call`` POSTs (``raw_http_calls.py``),
    set up as the SDK's ``httpx`` client is: the upstream's headers, its trust store (``trust``),
    a proxy and ``.netrc`` credentials from the environment, a connect timeout and no read
    timeout (each call's own timeout governs it). The environment is read once here:
    aiohttp's ``trust_env`` would read it on every request, in two worker threads. An idle
    connection is let go after 4 s, before a uvicorn-served upstream closes it (its default
    keep-alive is 5 s) and a call could be sent on it as it closes."""
    url = URL(config.url)
    proxy, proxy_auth = _proxy_from_env(url)
    authorized = any(key.lower() == "authorization" for key in config.headers)
    return aiohttp.ClientSession(
        headers=config.headers,
        auth=None if authorized else _netrc_credentials(url),
        proxy=proxy,
        proxy_auth=proxy_auth,
        timeout=aiohttp.ClientTimeout(total=None, connect=config.connect_timeout_s),
        connector=aiohttp.TCPConnector(ssl=trust, keepalive_timeout=4.0),
    )


def _proxy_from_env(url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy ``HTTP_PROXY``/``HTTPS_PROXY`` name for ``url`` unless ``NO_PROXY`` exempts it."""
    try:
        return get_env_proxy_for_url(url)
    except LookupError:
        return None, None


def _netrc_credentials(url: URL) -> aiohttp.BasicAuth | None:
    """``url``'s host's credentials in ``$NETRC`` or ``~/.netrc``, if any."""
    try:
        return basicauth_from_netrc(netrc_from_env(), url.host or "")
    except LookupError:
        return None
