"""The admin HTTP API (Starlette routes), mounted by the gateway under ``/admin/approvals``.

It must sit behind ``BearerAuthMiddleware``: the caller is ``scope["state"]["principal"]``.
A caller sees a request when it is the requester, one of its approvers, or holds an
admin role (``ApprovalConfig.admin_roles``); other requests answer 404 as if absent.

- ``GET  /``                 list (``?state=pending|approved|...``)
- ``GET  /{id}``             one request: context, decision, signature check, deliveries
- ``POST /{id}/approve``     ``{"reason": "..."}`` (reason optional)
- ``POST /{id}/reject``      ``{"reason": "..."}`` (reason required)

Errors are JSON ``{"error": code, "message": ...}`` with 400, 401, 403, 404, 409, 413, or
503 when the approvals database or the audit log is unavailable.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_guard.approvals.authz import can_view
from mcp_guard.approvals.bodies import read_bounded_body
from mcp_guard.approvals.errors import ApprovalError, ApprovalNotFoundError
from mcp_guard.approvals.models import ApprovalRequest, ApprovalState
from mcp_guard.approvals.notifiers.base import links
from mcp_guard.approvals.service import UNAVAILABLE, ApprovalService
from mcp_guard.principal import Principal, principal_in

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024

Endpoint = Callable[[Request], Awaitable[JSONResponse]]

BIDI_CONTROLS = frozenset("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Characters that reorder the text around them (``Trojan Source``): a reason shown to a
human must read as it is stored."""


def unsafe_character(text: str) -> str | None:
    """The first control character (other than newline and tab) or bidi control in ``text``.

    A reason is printed by the CLI, shown in the admin API and returned to the agent;
    terminal escapes, NULs and bidi overrides would let an approver's text pass for
    something else.
    """
    for char in text:
        if char in "\n\t":
            continue
        if unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS:
            return char
    return None


def has_visible_text(text: str) -> bool:
    """Whether ``text`` holds something a reader can see (not only spaces or zero-width characters)."""
    return any(not char.isspace() and unicodedata.category(char) not in ("Cc", "Cf") for char in text)


class DecisionBody(BaseModel):
    """The JSON body of ``approve`` and ``reject``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)

    @field_validator("reason")
    @classmethod
    def _printable(cls, reason: str) -> str:
        char = unsafe_character(reason)
        if char is not None:
            raise ValueError(f"the reason holds the control character U+{ord(char):04X}; send plain text")
        return reason


def is_json_media_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` header value names JSON (``application/json``, ``...+json``)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def unavailable_as_503(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` (the admin API's or Slack's), answering 503 JSON naming the cause when
    the approvals database or the audit log is unavailable, instead of a bare 500. A
    decision is audited and stored in one transaction, so such a failure changes nothing."""

    async def guarded(request: Request) -> JSONResponse:
        try:
            return await endpoint(request)
        except UNAVAILABLE as exc:
            logger.error("approvals: %s %s failed: %s", request.method, request.url.path, exc)
            return _error(
                503,
                "unavailable",
                f"approvals are unavailable right now ({type(exc).__name__}: {exc}); "
                "nothing was forwarded; read the request again before retrying",
            )

    return guarded


def request_view(service: ApprovalService, request: ApprovalRequest) -> dict[str, Any]:
    """What an approver sees: the stored request, whether its signature verifies, and links."""
    view = request.model_dump(mode="json")
    view["signature_valid"] = service.verify(request) if request.decision is not None else None
    view["links"] = links(request, service.config.public_url)
    return view


def approval_routes(service: ApprovalService, *, prefix: str = "") -> list[Route]:
    """The admin API routes. Use under ``Mount("/admin/approvals", routes=...)``, or pass
    ``prefix="/admin/approvals"`` to get routes with full paths."""
    cfg = service.config

    async def visible(request_id: str, viewer: Principal) -> ApprovalRequest:
        found = await service.get(request_id)
        if found is None or not can_view(found, viewer, cfg.default_approvers, cfg.admin_roles):
            raise ApprovalNotFoundError(request_id)
        return found

    async def list_requests(request: Request) -> JSONResponse:
        viewer = principal_in(request.scope)
        if viewer is None:
            return _error(401, "unauthenticated", "no authenticated principal on this request")
        state_text = request.query_params.get("state")
        try:
            state = None if state_text is None else ApprovalState(state_text)
        except ValueError:
            allowed = ", ".join(s.value for s in ApprovalState)
            return _error(400, "invalid_request", f"state={state_text!r} is not one of: {allowed}")

        def may_see(found: ApprovalRequest) -> bool:
            return can_view(found, viewer, cfg.default_approvers, cfg.admin_roles)

        found = await service.list(state, may_see)
        return JSONResponse({"approvals": [request_view(service, r) for r in found]})

    async def show(request: Request) -> JSONResponse:
        viewer = principal_in(request.scope)
        if viewer is None:
            return _error(401, "unauthenticated", "no authenticated principal on this request")
        request_id = request.path_params["id"]
        try:
            found = await visible(request_id, viewer)
        except ApprovalError as exc:
            return _error(exc.status, exc.code, str(exc))
        view = request_view(service, found)
        view["deliveries"] = [d.model_dump(mode="json") for d in await service.deliveries(request_id)]
        return JSONResponse(view)

    async def decide(request: Request, approve: bool) -> JSONResponse:
        viewer = principal_in(request.scope)
        if viewer is None:
            return _error(401, "unauthenticated", "no authenticated principal on this request")
        body = await read_bounded_body(request, MAX_BODY)
        if body is None:
            return _error(413, "payload_too_large", f"the body exceeds {MAX_BODY} bytes")
        if body and not is_json_media_type(request.headers.get("content-type", "")):
            # also keeps a cross-site form post (no preflight) from deciding as a local principal
            return _error(415, "unsupported_media_type", "send the body as Content-Type: application/json")
        try:
            parsed = DecisionBody.model_validate_json(body or b"{}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return _error(400, "invalid_request", f"{where}: {first['msg']}")
        if not approve and not has_visible_text(parsed.reason):
            return _error(400, "invalid_request", "reason: a rejection needs a reason")
        request_id = request.path_params["id"]
        try:
            await visible(request_id, viewer)
            decided = await service.decide(request_id, viewer, approve, parsed.reason, via="api")
        except ApprovalError as exc:
            return _error(exc.status, exc.code, str(exc))
        return JSONResponse(request_view(service, decided))

    async def approve(request: Request) -> JSONResponse:
        return await decide(request, approve=True)

    async def reject(request: Request) -> JSONResponse:
        return await decide(request, approve=False)

    base = prefix.rstrip("/")
    return [
        Route(base or "/", unavailable_as_503(list_requests), methods=["GET"]),
        Route(f"{base}/{{id}}", unavailable_as_503(show), methods=["GET"]),
        Route(f"{base}/{{id}}/approve", unavailable_as_503(approve), methods=["POST"]),
        Route(f"{base}/{{id}}/reject", unavailable_as_503(reject), methods=["POST"]),
    ]
