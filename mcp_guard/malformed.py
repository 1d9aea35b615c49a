"""Messages a client sends that the SDK cannot read as JSON-RPC, and the error answering each.

The SDK's stdio transport drops such a line without a word (its dispatcher logs the
parse failure at debug level), so a client that sent a request with a typo, a float
id or a lone surrogate waits for an answer until its own timeout. JSON-RPC 2.0 asks
for an error instead: ``-32700`` for text that is not JSON, ``-32600`` for JSON that
is not a valid message, with the request's id when it can be read, else ``null``.
:func:`answer_malformed` sits in front of the SDK's reader and sends those errors;
lines the SDK reads pass unchanged, and are parsed by it exactly as before.

A line longer than :data:`~mcp_guard.stdio_wire.MAX_LINE_BYTES` is refused too, its id
unread. A malformed *response* (a message with ``result`` or ``error`` and no ``method``)
is logged and never answered: JSON-RPC does not answer responses. Over HTTP the SDK does
answer, but without naming the fault or the id: :class:`AnswerMalformedPosts` replaces
those answers with the same errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import pydantic_core
from mcp import types
from mcp.shared.dispatcher import as_request_id
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_guard.stdio_wire import OverlongLine, StdoutPipe

logger = logging.getLogger(__name__)

_PREVIEW_CHARS = 200
"""How much of a refused line the log shows."""
_JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "true or false", type(None): "null"}


@dataclass(frozen=True)
class Refusal:
    """Why a line is not a message the SDK reads, and the id to answer with (None: ``null``)."""

    code: int
    reason: str
    request_id: types.RequestId | None = None
    answered: bool = True
    """False for a malformed response, which JSON-RPC never answers."""

    @property
    def message(self) -> str:
        kind = "Parse error" if self.code == types.PARSE_ERROR else "Invalid request"
        return f"{kind}: {self.reason}"

    def answer(self) -> dict[str, Any]:
        """The JSON-RPC error response."""
        error = {"code": self.code, "message": self.message}
        return {"jsonrpc": "2.0", "id": self.request_id, "error": error}


def refusal(line: str) -> Refusal | None:
    """None if the SDK reads ``line`` as a JSON-RPC message it would act on, or ``line`` is
    blank (nothing to answer; the SDK skips it); else why not.

    The SDK's own parser is the judge, so a line this passes is one the SDK reads. One
    more case is refused: a request whose ``id`` is not a string or an integer
    (``1.5``, ``true``, ``null``), which the SDK reads as a notification and never answers.
    """
    if isinstance(line, OverlongLine):
        return Refusal(types.INVALID_REQUEST, f"a message longer than {line.limit} bytes")
    if not line.strip():
        return None
    try:
        message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as exc:
        return _why_unreadable(line, exc)
    if isinstance(message, types.JSONRPCNotification) and '"id"' in line:
        value = _parsed(line)
        if isinstance(value, dict) and "id" in value:
            shown = json.dumps(value["id"])[:40]
            return Refusal(types.INVALID_REQUEST, f'"id" must be a string or an integer, not {shown}')
    return None


def _why_unreadable(line: str, exc: ValidationError) -> Refusal:
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        where = errors[0]["msg"].removeprefix("Invalid JSON: ")
        try:
            value = json.loads(line)  # the standard library also reads lone surrogate escapes
        except ValueError:
            return Refusal(types.PARSE_ERROR, where)
        reason = f"a string holds a lone surrogate escape, which is not Unicode text ({where})"
        return Refusal(types.INVALID_REQUEST, reason, _id_of(value), _answered(value))
    value = _parsed(line)  # valid JSON: the error was the message's shape
    return Refusal(types.INVALID_REQUEST, _shape_fault(value, errors), _id_of(value), _answered(value))


def _parsed(line: str) -> object:
    """``line`` as JSON (which the SDK's parser has already read), or None should it fail."""
    try:
        return pydantic_core.from_json(line)
    except ValueError:
        return None


def _shape_fault(value: object, errors: list[Any]) -> str:
    """What is wrong with valid JSON that is not a JSON-RPC message, in the client's terms."""
    if isinstance(value, list):
        return "a JSON array (a batch); MCP takes one message at a time"
    if not isinstance(value, dict):
        return f"expected a JSON-RPC message object, got {_JSON_TYPES.get(type(value), 'a value')}"
    if value.get("jsonrpc") != "2.0":
        return '"jsonrpc" must be "2.0"'
    if "method" in value:
        if not isinstance(value["method"], str):
            return '"method" must be a string'
        if value.get("params") is not None and not isinstance(value["params"], dict):
            return '"params" must be an object'
        branch = "JSONRPCRequest" if "id" in value else "JSONRPCNotification"
    elif "result" in value or "error" in value:
        branch = "JSONRPCError" if "error" in value else "JSONRPCResponse"
    else:
        return 'a message needs "method" (a request or notification) or "result" or "error" (a response)'
    for error in errors:  # the SDK's own complaint about the kind of message this is
        location = error["loc"]
        if location and location[0] == branch:
            field = ".".join(str(part) for part in location[1:]) or "message"
            return f"{field}: {error['msg']}"
    return "not a JSON-RPC 2.0 message"


def _id_of(value: object) -> types.RequestId | None:
    return as_request_id(value.get("id")) if isinstance(value, dict) else None


def _answered(value: object) -> bool:
    """False for a response: a message without ``method`` but with ``result`` or ``error``."""
    if not isinstance(value, dict) or "method" in value:
        return True
    return "result" not in value and "error" not in value


async def answer_malformed(lines: AsyncIterable[str], out: StdoutPipe) -> AsyncIterator[str]:
    """``lines`` minus those the SDK cannot read; each of those is answered on ``out``
    (see :func:`refusal`) and logged."""
    async for line in lines:
        refused = refusal(line)
        if refused is None:
            yield line
            continue
        if refused.answered:
            logger.warning("stdio: answered %s: %r", refused.message, line[:_PREVIEW_CHARS])
            await out.send(pydantic_core.to_json(refused.answer()) + b"\n")
        else:
            preview = line[:_PREVIEW_CHARS]
            logger.warning("stdio: dropped a malformed response (%s): %r", refused.reason, preview)


_STREAMABLE_UNREADABLE = ("Parse error", "Validation error")
"""How the SDK's streamable-HTTP transport begins the error message of its 400 answer to a
body it cannot read."""
_SSE_UNREADABLE = b"Could not parse message"
"""The SDK's SSE transport's whole (plain text) 400 answer to a body it cannot read."""


class AnswerMalformedPosts:
    """Pure ASGI middleware for the MCP endpoints: the SDK's answer to a POST body it cannot
    read is replaced by :func:`refusal`'s (a ``400`` with the JSON-RPC error naming the fault
    and the request's id), where the SDK's names neither (``Validation error: 6 validation
    errors for union[...]``, SSE's plain ``Could not parse message``). A request with an id
    that is not a string or an integer, which the SDK accepts as a notification (``202``),
    is answered ``400`` too. Nothing else changes, and the body is read by the SDK alone: the
    middleware keeps its chunks only until the answer starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] | None = []
        held: Message | None = None

        async def teed_receive() -> Message:
            message = await receive()
            if chunks is not None and message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def rewriting_send(message: Message) -> None:
            nonlocal chunks, held
            if message["type"] == "http.response.start":
                if message["status"] in (400, 202) and chunks is not None:
                    held = message
                    return
                chunks = None
            elif held is not None and message["type"] == "http.response.body":
                start, held, body = held, None, b"".join(chunks or ())
                chunks = None
                replaced = _replacement(start["status"], message, body)
                if replaced is not None:
                    start, message = _json_answer(start, replaced)
                await send(start)
            await send(message)

        await self.app(scope, teed_receive, rewriting_send)


def _replacement(status: int, answer: Message, body: bytes) -> Refusal | None:
    """The refusal that replaces the SDK's whole ``status`` answer to ``body``, if any."""
    if answer.get("more_body"):
        return None
    if status == 400 and not _about_the_body(answer.get("body", b"")):
        return None  # a 400 about something else (a session, a header)
    if status == 202 and b'"id"' not in body:
        return None
    refused = refusal(body.decode("utf-8", errors="replace"))
    return refused if refused is not None and refused.answered else None


def _about_the_body(sent: bytes) -> bool:
    """Whether the SDK's 400 answer says it could not read the body (as JSON-RPC or SSE's text)."""
    if sent.startswith(_SSE_UNREADABLE):
        return True
    try:
        message = pydantic_core.from_json(sent)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(message, str) and message.startswith(_STREAMABLE_UNREADABLE)


def _json_answer(start: Message, refused: Refusal) -> tuple[Message, Message]:
    body = pydantic_core.to_json(refused.answer())
    kept = [
        (k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")
    ]
    headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {**start, "status": 400, "headers": headers}, {"type": "http.response.body", "body": body}
