"""``tools/call`` to an upstream without the SDK's client session: the call path's hop.

A request through the SDK's client session crosses two memory streams, a dispatcher
task and per-request bookkeeping; for a small tool that is most of the time a call
spends upstream. Here the calling task sends its request itself and gets the matching
answer (and progress for its token) straight back, parsed once: over stdio
(:class:`RawCalls`: the request line is written to the process and the link's reader
hands the answer back) and over streamable HTTP
(:class:`~mcp_guard.upstreams.raw_http_calls.RawHttpCalls`: one POST of its own).
Everything else on the link (initialize, listings, resources, prompts,
notifications) still goes through the SDK session.

Ids never collide with the session's: the SDK numbers its requests, these are
strings ``"mcp-guard-<n>"``; an upstream's progress token is the request id.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import pydantic_core
from mcp import types
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_guard.errors import UpstreamUnavailableError

logger = logging.getLogger(__name__)

ID_PREFIX = "mcp-guard-"
MAX_QUEUED_PROGRESS = 64
"""Progress notifications held for one call while its caller is busy; older ones are dropped."""
CANCEL_WRITE_TIMEOUT_S = 1.0
_ANSWER_HEAD = re.compile(
    rb'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*"(' + re.escape(ID_PREFIX.encode()) + rb'[0-9]+)"'
    rb'\s*,\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"(?:result|error)"\s*:'
)
"""The opening of an answer to one of the calls made here: its top-level ``id`` (only ours,
``"mcp-guard-<n>"``) and then its ``result`` or ``error``, at most with ``"jsonrpc":"2.0"``
around the id. Read from a line that cannot be parsed, it can only be that answer's id,
never one nested inside it or inside another message."""

Send = Callable[[bytes], Awaitable[None]]


@dataclass(eq=False)
class _Pending:
    answer: dict[str, Any] | None = None
    progress: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_QUEUED_PROGRESS))
    waiting: anyio.Event | None = None
    """Set by :meth:`wake`; made only when the caller waits (a call answered at once needs one)."""

    def wake(self) -> None:
        if self.waiting is not None:
            self.waiting.set()

    async def wait(self) -> None:
        """Until :meth:`wake` is called."""
        self.waiting = anyio.Event()
        await self.waiting.wait()


class ToolCaller(Protocol):
    """A raw ``tools/call`` path (stdio or streamable HTTP)."""

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        meta: Mapping[str, Any] | None,
        on_progress: ProgressFnT | None,
    ) -> types.CallToolResult: ...


@dataclass
class Link:
    """One connection to an upstream: why it closed, when it was the gateway's doing (e.g.
    an oversized message), and its raw ``tools/call`` path, if it has one (stdio while the
    process runs, streamable HTTP)."""

    upstream: str
    close_reason: str | None = None
    calls: ToolCaller | None = None
    session_lost: anyio.Event = field(default_factory=anyio.Event)
    """Set once the upstream has forgotten the connection's session (streamable HTTP only)."""


class RawCalls:
    """The ``tools/call`` requests in flight on one stdio link."""

    def __init__(self, upstream: str, send: Send) -> None:
        self.upstream = upstream
        self._send = send
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._closed: str | None = None

    # -- the link's reader side -------------------------------------------------------

    def route(self, message: object) -> bool:
        """Take ``message`` if it answers, or reports progress on, a call made here.

        Called by the link's reader for every message; returns False for anything
        the SDK session should see.
        """
        if not isinstance(message, dict):
            return False
        ident = message.get("id")
        if isinstance(ident, str) and "method" not in message:
            pending = self._pending.get(ident)
            if pending is not None:
                pending.answer = message
                pending.wake()
            return ident.startswith(ID_PREFIX)  # a late answer to a cancelled call is dropped here
        params = progress_params(message)
        if params is None:
            return False
        pending = self._pending.get(params["progressToken"])
        if pending is not None:
            pending.progress.append(params)
            pending.wake()
        return True

    def unparseable(self, line: bytes, problem: str) -> None:
        """The link's reader could not parse ``line`` (``problem``). If it opens like the answer
        to a call in flight here (:data:`_ANSWER_HEAD`), that call fails at once with a
        JSON-RPC parse error naming the problem, as it would over streamable HTTP, instead of
        waiting out its timeout."""
        head = _ANSWER_HEAD.match(line)
        pending = self._pending.get(head.group(1).decode()) if head else None
        if pending is not None:
            error = {"code": types.PARSE_ERROR, "message": f"the answer cannot be parsed as JSON: {problem}"}
            pending.answer = {"error": error}
            pending.wake()

    def close(self, reason: str) -> None:
        """The link is gone: every call in flight fails with ``reason``, and so does every new one."""
        self._closed = reason
        for pending in self._pending.values():
            pending.wake()

    # -- the caller's side ------------------------------------------------------------

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        meta: Mapping[str, Any] | None,
        on_progress: ProgressFnT | None,
    ) -> types.CallToolResult:
        """Send one ``tools/call`` and wait for its answer; cancelling the caller cancels it upstream.

        Raises:
            UpstreamUnavailableError: the link is closed, or closed before the answer came.
            MCPError: the upstream answered with a JSON-RPC error.
            ValidationError: the answer is not a valid ``CallToolResult`` or error.
        """
        if self._closed is not None:
            raise UpstreamUnavailableError(self.upstream, self._closed)
        ident = f"{ID_PREFIX}{next(self._ids)}"
        pending = _Pending()
        self._pending[ident] = pending
        sent = False
        try:
            await self._write(
                request_bytes(ident, name, arguments, meta, progress=on_progress is not None) + b"\n"
            )
            sent = True
            answer = await self._answer(pending, on_progress)
        except BaseException:
            if sent and pending.answer is None and self._closed is None:
                await self._cancel_upstream(ident)
            raise
        finally:
            del self._pending[ident]
        return call_result(answer)

    async def _answer(self, pending: _Pending, on_progress: ProgressFnT | None) -> dict[str, Any]:
        while True:
            while pending.progress:
                params = pending.progress.popleft()
                if on_progress is not None:
                    await report_progress(on_progress, params)
            if pending.answer is not None:
                return pending.answer
            if self._closed is not None:
                raise UpstreamUnavailableError(self.upstream, f"{self._closed} during the call")
            await pending.wait()

    async def _write(self, data: bytes) -> None:
        try:
            await self._send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise UpstreamUnavailableError(self.upstream, f"cannot write to the process: {exc}") from None

    async def _cancel_upstream(self, ident: str) -> None:
        """Tell the upstream to stop (spec: ``notifications/cancelled``), shielded, best effort."""
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(CANCEL_WRITE_TIMEOUT_S),
            suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError),
        ):
            await self._send(cancel_bytes(ident) + b"\n")


def request_bytes(
    ident: str,
    name: str,
    arguments: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
    *,
    progress: bool,
) -> bytes:
    """The ``tools/call`` request ``ident`` as JSON; with ``progress``, its id is also its progress token."""
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = dict(arguments)
    request_meta = dict(meta) if meta else {}
    if progress:
        request_meta["progressToken"] = ident
    if request_meta:
        params["_meta"] = request_meta
    return pydantic_core.to_json({"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params})


def cancel_bytes(ident: str) -> bytes:
    """``notifications/cancelled`` for request ``ident`` (the spec's way to tell an upstream to stop)."""
    params = {"requestId": ident, "reason": "the gateway cancelled the call"}
    return pydantic_core.to_json({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})


def progress_params(message: dict[str, Any]) -> dict[str, Any] | None:
    """The params of a progress notification for one of the calls made here, else None."""
    if message.get("method") != "notifications/progress":
        return None
    params = message.get("params")
    token = params.get("progressToken") if isinstance(params, dict) else None
    return params if isinstance(token, str) and token.startswith(ID_PREFIX) else None


async def report_progress(on_progress: ProgressFnT, params: dict[str, Any]) -> None:
    try:
        progress = types.ProgressNotificationParams.model_validate(params, by_name=False)
    except ValidationError:
        logger.debug("dropped a malformed progress notification")
        return
    await on_progress(progress.progress, progress.total, progress.message)


_VALIDATE_RESULT = types.CallToolResult.__pydantic_validator__.validate_python
"""``CallToolResult.model_validate`` without the class method's keyword handling around it
(every forwarded call's answer goes through here)."""


def call_result(answer: dict[str, Any]) -> types.CallToolResult:
    """Raises: MCPError (a JSON-RPC error answer), ValidationError (neither a result nor an error)."""
    if "error" in answer:
        raise MCPError.from_error_data(types.ErrorData.model_validate(answer["error"], by_name=False))
    result: types.CallToolResult = _VALIDATE_RESULT(answer.get("result"), by_name=False)
    return result
