"""Opening a client session to one upstream over stdio, SSE or streamable HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import anyio
import httpx2
from mcp import ClientSession, types
from mcp.client.session import MessageHandlerFnT
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import SessionMessage

from mcp_guard import __version__
from mcp_guard.upstreams.config import HttpUpstream, UpstreamConfig
from mcp_guard.upstreams.reaper import Reaper
from mcp_guard.upstreams.stdio import StdioLink, bounded_stdio_client

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
    link: StdioLink


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
    link = StdioLink(name)
    async with AsyncExitStack() as stack:
        if isinstance(config, HttpUpstream):
            streams = await stack.enter_async_context(_http_streams(config))
        else:
            streams = await stack.enter_async_context(bounded_stdio_client(name, config, link, reaper))
        read, write = streams
        watched = WatchedReadStream(read)
        dispatcher: JSONRPCDispatcher[Any] = JSONRPCDispatcher(watched, write)
        session = await stack.enter_async_context(
            ClientSession(dispatcher=dispatcher, message_handler=message_handler, client_info=CLIENT_INFO)
        )
        result = await session.initialize()
        yield Connection(
            session=session, dispatcher=dispatcher, closed=watched.closed, initialize=result, link=link
        )


@asynccontextmanager
async def _http_streams(config: HttpUpstream) -> AsyncIterator[Any]:
    if config.type == "sse":
        async with sse_client(
            config.url, headers=dict(config.headers), timeout=config.connect_timeout_s
        ) as s:
            yield s
        return
    timeout = httpx2.Timeout(config.connect_timeout_s, read=None)
    async with (
        httpx2.AsyncClient(headers=dict(config.headers), timeout=timeout) as client,
        streamable_http_client(
            config.url, http_client=client, max_sse_event_size=config.max_message_bytes
        ) as s,
    ):
        yield s
