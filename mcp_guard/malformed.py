"""Lines a stdio client sends that the SDK cannot read as JSON-RPC, and the error answering each.

The SDK's stdio transport drops such a line without a word (its dispatcher logs the
parse failure at debug level), so a client that sent a request with a typo, a float
id or a lone surrogate waits for an answer until its own timeout. JSON-RPC 2.0 asks
for an error instead: ``-32700`` for text that is not JSON, ``-32600`` for JSON that
is not a valid message, with the request's id when it can be read, else ``null``.
:func:`answer_malformed` sits in front of the SDK's reader and sends those errors;
lines the SDK reads pass unchanged, and are parsed by it exactly as before.

A line longer than :data:`~mcp_guard.stdio_wire.MAX_LINE_BYTES` is refused too, its id
unread. A malformed *response* (a message with ``result`` or ``error`` and no ``method``)
is logged and never answered: JSON-RPC does not answer responses.
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
        value = pydantic_core.from_json(line)  # parsed by the SDK a moment ago: cannot fail
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
    value = pydantic_core.from_json(line)  # valid JSON: the error was the message's shape
    return Refusal(types.INVALID_REQUEST, _shape_fault(value, errors), _id_of(value), _answered(value))


def _shape_fault(value: object, errors: list[Any]) -> str:
    """What is wrong with valid JSON that is not a JSON-RPC message, in the client's terms."""
    if isinstance(value, list):
        return "a JSON array (a batch); MCP takes one message per line"
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
