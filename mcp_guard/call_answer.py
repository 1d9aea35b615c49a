"""One ``tools/call`` answered as the SDK answers it, for the call lanes that skip the SDK's
session (:mod:`mcp_guard.stdio_lane`, :mod:`mcp_guard.http_lane`).

The same parameter validation and result shaping for the call's protocol version
(:mod:`mcp_types.methods`; 2026-era results also get ``resultType`` and the
``serverInfo`` stamp), the same errors, and progress for the client's token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import types
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import SERVER_INFO_META_KEY
from mcp_types.methods import serialize_server_result, validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError

from mcp_guard.errors import UnknownToolError
from mcp_guard.gateway import Gateway
from mcp_guard.pipeline.call import ProgressReporter
from mcp_guard.principal import Principal

logger = logging.getLogger(__name__)

METHOD = "tools/call"


@dataclass(frozen=True)
class Call:
    """One ``tools/call`` the lane took, with the protocol version and client it came with."""

    request_id: types.RequestId
    params: object
    version: str
    client_info: dict[str, Any] | None


async def answer_call(
    gateway: Gateway,
    principal: Callable[[], Principal],
    session_id: str,
    call: Call,
    *,
    server_info: dict[str, Any],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> dict[str, Any]:
    """The response message to ``call``: a result, or the error the SDK would have sent.

    ``principal`` is asked after the parameters are validated, as the SDK path asks; it
    raises ``MCPError`` to refuse the call. ``send`` writes each progress notification
    (only asked when the call carries a progress token)."""
    request_id = call.request_id
    try:
        result = await _call(gateway, principal, session_id, call, server_info=server_info, send=send)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}
    except MCPError as exc:
        error = exc.error
    except anyio.BrokenResourceError:
        raise  # the client went away while progress was reported
    except Exception:  # fail closed: a bug answers with an error and never takes the lane down
        logger.exception("%s %r failed inside the gateway", METHOD, request_id)
        error = types.ErrorData(code=types.INTERNAL_ERROR, message="mcp-guard failed; see its log")
    return error_answer(request_id, error)


async def _call(
    gateway: Gateway,
    principal: Callable[[], Principal],
    session_id: str,
    call: Call,
    *,
    server_info: dict[str, Any],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> dict[str, Any]:
    """Raises: MCPError — invalid parameters, an unknown tool, an invalid result."""
    params, version = call.params, call.version
    try:
        validate_client_request(METHOD, version, params if isinstance(params, dict) else None)
    except ValidationError:
        raise MCPError(code=types.INVALID_PARAMS, message="Invalid request parameters", data="") from None
    assert isinstance(params, dict)
    who = principal()  # as the SDK path asks after validating the parameters
    meta = params.get("_meta")
    try:
        result = await gateway.call_tool(
            who,
            session_id,
            params["name"],
            params.get("arguments"),
            meta=meta if isinstance(meta, dict) and meta else None,  # as server.py's handler passes it
            client_info=call.client_info,
            on_progress=_progress_reporter(params, send),
        )
    except UnknownToolError as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None
    try:
        shaped = serialize_server_result(METHOD, version, _wire(result))
    except ValidationError:
        logger.exception("%s returned an invalid result", METHOD)
        raise MCPError(code=types.INTERNAL_ERROR, message="Handler returned an invalid result") from None
    if version in MODERN_PROTOCOL_VERSIONS:  # as the SDK's runner finishes a 2026-era result
        if shaped.get("resultType") is None:
            shaped["resultType"] = "complete"
        meta = shaped.get("_meta")
        if meta is None:
            shaped["_meta"] = {SERVER_INFO_META_KEY: server_info}
        elif isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None:
            shaped["_meta"] = {**meta, SERVER_INFO_META_KEY: server_info}
    return shaped


def _progress_reporter(
    params: dict[str, Any], send: Callable[[dict[str, Any]], Awaitable[None]]
) -> ProgressReporter | None:
    token = progress_token_from_params(params)
    if token is None:
        return None

    async def report(progress: float, total: float | None, message: str | None) -> None:
        notice: dict[str, Any] = {"progressToken": token, "progress": progress}
        if total is not None:
            notice["total"] = total
        if message is not None:
            notice["message"] = message
        await send({"jsonrpc": "2.0", "method": "notifications/progress", "params": notice})

    return report


def _wire(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def error_answer(request_id: types.RequestId, error: types.ErrorData) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": _wire(error)}
