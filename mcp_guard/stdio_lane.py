"""``tools/call`` from a stdio client without the SDK's server session: the call path's first hop.

Through the SDK a request crosses memory streams, a dispatcher task, a request
context and a middleware chain before the gateway sees it, and as much again on the
way out; for a small tool that is most of the time mcp-guard adds. The lane sits
between the stdin reader and the SDK: it parses each line once and takes the
``tools/call`` requests of a client in either protocol era, calls the gateway and
writes the answer itself. Every other message (initialize, listings, resources,
prompts, pings) goes to the SDK unchanged.

The era is decided as the SDK decides it, by the client's first request: the
``initialize`` handshake (2025-11-25 and before) opens the lane once the client
confirms with ``notifications/initialized``; a request carrying the 2026-07-28
per-request ``_meta`` envelope opens it at once, and each call is then classified by
the SDK's own envelope ladder (a call it would refuse goes to the SDK, which refuses it).

The lane answers as the SDK would: the same parameter validation and result shaping
for the call's protocol version (:mod:`mcp_types.methods`; 2026-era results also get
``resultType`` and the ``serverInfo`` stamp), the same errors, progress for the
client's token, and a request the client cancels is never answered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, Literal, TypeVar

import anyio
import pydantic_core
from anyio.abc import TaskGroup
from mcp import types
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import BaseModel, ValidationError

from mcp_guard.call_answer import METHOD, Call, answer_call, error_answer
from mcp_guard.gateway import Gateway
from mcp_guard.principal import Principal
from mcp_guard.stdio_wire import StdoutPipe

logger = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)

_MARKERS = ("tools", "initialize", "cancelled")
"""A line naming none of these is the SDK's without parsing it here. Fragments, not whole
method names: JSON may spell ``notifications/cancelled`` as ``notifications\\/cancelled``,
and a cancellation the lane misses would leave its call running."""


class StdioCallLane:
    """Takes ``tools/call`` requests off a stdio client's input; see the module docstring.

    ``calls`` owns the task of every call in flight.
    """

    def __init__(
        self,
        gateway: Gateway,
        principal: Callable[[], Principal],
        session_id: str,
        out: StdoutPipe,
        calls: TaskGroup,
        *,
        server_info: dict[str, Any],
    ) -> None:
        """``principal``: asked once per call; raises ``MCPError`` to refuse it (an expired
        token, :func:`mcp_guard.transports.stdio_principal`).
        ``server_info``: the SDK server's ``server_info_stamp``, for 2026-era results."""
        self._gateway = gateway
        self._principal = principal
        self._session_id = session_id
        self._out = out
        self._calls = calls
        self._server_info = server_info
        self._era: Literal["handshake", "envelope"] | None = None
        """Decided by the client's first request, as the SDK decides it."""
        self._offered: tuple[str, dict[str, Any]] | None = None
        """Version and client info from ``initialize``, until the client confirms with ``initialized``."""
        self._version: str | None = None
        self._client_info: dict[str, Any] | None = None
        self._in_flight: dict[types.RequestId, anyio.CancelScope] = {}
        self._closing = False
        self._all_answered = anyio.Event()

    async def lines(self, source: AsyncIterable[str]) -> AsyncIterator[str]:
        """``source`` minus the messages the lane took."""
        async for line in source:
            # every line is read until the first request has decided the era
            if (self._era is None or any(marker in line for marker in _MARKERS)) and self._take(line):
                continue
            yield line

    def _take(self, line: str) -> bool:
        try:
            message = pydantic_core.from_json(line)
        except ValueError:
            return False  # the SDK answers with a parse error
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return False
        method, params = message.get("method"), message.get("params")
        if "error" in message or not isinstance(params, dict | None):
            return False  # the SDK reads the first as an error response and refuses the second
        if "id" in message:
            if self._era is None:
                self._decide_era(message)
            if method == METHOD and self._era == "envelope":
                return self._start_enveloped(message)
            if method == METHOD and self._version is not None:
                return self._start(message.get("id"), params, self._version, self._client_info)
            if method == "initialize" and self._era == "handshake":
                self._note_initialize(params)
            return False
        if method == "notifications/initialized" and self._offered is not None:
            self._version, self._client_info = self._offered
            logger.info("stdio: tools/call answered directly (protocol %s)", self._version)
        elif method == "notifications/cancelled":
            return self._cancel(params)
        return False

    def _decide_era(self, message: dict[str, Any]) -> None:
        """The SDK's rule: the first request opens a 2026-era connection if it is not
        ``initialize`` and its ``params._meta`` names a protocol version; else a handshake one."""
        method, params = message.get("method"), message.get("params")
        if as_request_id(message.get("id")) is None or not isinstance(method, str):
            return  # not a request the SDK would read as one: it decides nothing
        if params is not None and not isinstance(params, dict):
            return
        meta = params.get("_meta") if params else None
        enveloped = isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta
        self._era = "envelope" if method != "initialize" and enveloped else "handshake"
        if self._era == "envelope":
            logger.info("stdio: tools/call answered directly (per-request protocol envelope)")

    def _start_enveloped(self, message: dict[str, Any]) -> bool:
        """A 2026-era call the SDK's envelope ladder accepts; anything else is the SDK's to refuse."""
        route = classify_inbound_request(message)
        if isinstance(route, InboundLadderRejection):
            return False
        info = _typed(types.Implementation, route.client_info)
        capabilities = _typed(types.ClientCapabilities, route.client_capabilities)
        client_info = info.model_dump(mode="json") if info is not None and capabilities is not None else None
        return self._start(message.get("id"), message.get("params"), route.protocol_version, client_info)

    def _note_initialize(self, params: object) -> None:
        """Negotiate the version as the SDK does; the lane opens when the client sends ``initialized``."""
        self._offered = self._version = None
        try:
            init = types.InitializeRequestParams.model_validate(params, by_name=False)
        except ValidationError:
            return  # the SDK refuses the handshake; the lane stays closed
        requested = init.protocol_version
        version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        self._offered = (version, init.client_info.model_dump(mode="json"))

    def _start(
        self, raw_id: object, params: object, version: str, client_info: dict[str, Any] | None
    ) -> bool:
        request_id = as_request_id(raw_id)
        if request_id is None or coerce_request_id(request_id) in self._in_flight:
            return False  # the SDK answers a malformed or duplicate id
        scope = anyio.CancelScope()
        self._in_flight[coerce_request_id(request_id)] = scope
        call = Call(request_id, params, version, client_info)
        self._calls.start_soon(self._serve, call, scope, name=f"{METHOD} {request_id!r}")
        return True

    def _cancel(self, params: object) -> bool:
        request_id = cancelled_request_id_from_params(params if isinstance(params, dict) else None)
        scope = self._in_flight.get(coerce_request_id(request_id)) if request_id is not None else None
        if scope is None:
            return False
        scope.cancel()
        return True

    async def _serve(self, call: Call, scope: anyio.CancelScope) -> None:
        request_id = call.request_id
        try:
            answer: dict[str, Any] | None = None
            with scope:
                answer = await self._answer(call)
            if answer is None and self._closing:  # stdin ended and the grace period ran out
                closed = types.ErrorData(code=types.CONNECTION_CLOSED, message="Connection closed")
                answer = error_answer(request_id, closed)
            if answer is not None:  # a request the client cancelled is never answered
                await self._send(answer)  # StdoutClosed ends the session (serve_stdio), as on the SDK's side
        finally:
            del self._in_flight[coerce_request_id(request_id)]
            if not self._in_flight:
                self._all_answered.set()

    async def drain(self, grace_s: float) -> None:
        """The client closed stdin: calls in flight may finish and answer within ``grace_s``
        (a piped client still reads stdout); the rest are cancelled upstream and answered
        with the SDK's "Connection closed" error."""
        self._all_answered = anyio.Event()  # no call starts after EOF: one event covers the rest
        if self._in_flight:
            with anyio.move_on_after(grace_s):
                await self._all_answered.wait()
        self._closing = True
        for scope in self._in_flight.values():
            scope.cancel()

    async def _answer(self, call: Call) -> dict[str, Any]:
        return await answer_call(
            self._gateway,
            self._principal,
            self._session_id,
            call,
            server_info=self._server_info,
            send=self._send,
        )

    async def _send(self, message: dict[str, Any]) -> None:
        await self._out.send(pydantic_core.to_json(message) + b"\n")


def _typed(model: type[_M], value: object) -> _M | None:
    """``value`` as ``model``, or None if it does not fit (the SDK's reading of envelope values)."""
    if value is None:
        return None
    try:
        return model.model_validate(value, by_name=False)
    except ValidationError:
        return None
