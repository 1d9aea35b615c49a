"""Slack interactivity: the endpoint Slack calls when an approver clicks Approve or Reject.

Slack signs each request: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">``
keyed with the app's signing secret, and ``X-Slack-Request-Timestamp``. Requests with a
bad signature or a timestamp more than ``max_age_s`` (default 5 minutes) away are
refused (replay protection). The Slack user who clicked is mapped to an approver
through ``SlackInteractivity.users``; the decision then goes through the same
authorisation and signing as any other.

This endpoint is authenticated by Slack's signature, not by a bearer token: mount it
outside ``BearerAuthMiddleware``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_guard.approvals.bodies import read_bounded_body
from mcp_guard.approvals.config import SlackInteractivity
from mcp_guard.approvals.errors import ApprovalError
from mcp_guard.approvals.notifiers.slack import APPROVE_ACTION, REJECT_ACTION
from mcp_guard.approvals.routes import unavailable_as_503
from mcp_guard.approvals.service import ApprovalService
from mcp_guard.errors import GuardError
from mcp_guard.principal import Principal

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


class SlackSignatureError(GuardError):
    """A request claiming to come from Slack is unsigned, wrongly signed, or stale."""


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's ``v0=`` signature of ``body`` sent at ``timestamp``."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def verify_slack_signature(
    signing_secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    max_age_s: int = 300,
) -> None:
    """Check a Slack request's signature (constant-time) and freshness.

    Raises:
        SlackSignatureError: a header is missing, the timestamp is not an integer or
            further than ``max_age_s`` from ``now``, or the signature does not match.
    """
    if not timestamp or not signature:
        raise SlackSignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SlackSignatureError(f"X-Slack-Request-Timestamp {timestamp!r} is not an integer") from None
    if abs(now - sent) > max_age_s:
        raise SlackSignatureError(f"stale Slack request: timestamp {sent} is more than {max_age_s}s from now")
    expected = slack_signature(signing_secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise SlackSignatureError("X-Slack-Signature does not match the request")


def slack_routes(
    service: ApprovalService,
    config: SlackInteractivity,
    *,
    path: str = "/slack/interactivity",
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    """The Slack interactivity route (POST ``path``); ``clock`` gives Unix time."""

    async def interact(request: Request) -> JSONResponse:
        body = await read_bounded_body(request, MAX_BODY)
        if body is None:
            return JSONResponse(
                {"error": "payload_too_large", "message": f"the body exceeds {MAX_BODY} bytes"},
                status_code=413,
            )
        try:
            verify_slack_signature(
                config.signing_secret,
                request.headers.get("x-slack-request-timestamp"),
                request.headers.get("x-slack-signature"),
                body,
                now=clock(),
                max_age_s=config.max_age_s,
            )
        except SlackSignatureError as exc:
            logger.warning("refused Slack interactivity request: %s", exc)
            return JSONResponse({"error": "invalid_signature", "message": str(exc)}, status_code=401)
        return await _handle(service, config, body)

    return [Route(path, unavailable_as_503(interact), methods=["POST"])]


def _reply(text: str, ok: bool) -> JSONResponse:
    # Slack shows nothing for a block_actions answer body; 200 keeps it from reporting an error.
    return JSONResponse({"ok": ok, "text": text, "response_type": "ephemeral", "replace_original": False})


async def _handle(service: ApprovalService, config: SlackInteractivity, body: bytes) -> JSONResponse:
    try:
        payload: Any = json.loads(parse_qs(body.decode("utf-8"))["payload"][0])
        slack_user = payload["user"]
        slack_user_id = str(slack_user["id"])
        actions = [
            a for a in payload.get("actions", []) if a.get("action_id") in (APPROVE_ACTION, REJECT_ACTION)
        ]
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        return JSONResponse({"error": "invalid_request", "message": "not a Slack block_actions payload"}, 400)
    if not actions:
        return _reply("nothing to do", ok=True)
    action = actions[0]
    request_id = str(action.get("value", ""))
    mapped = config.users.get(slack_user_id)
    if mapped is None:
        logger.warning("Slack user %s is not mapped to an approver (approval %s)", slack_user_id, request_id)
        return _reply(f"Slack user {slack_user_id} is not configured as an mcp-guard approver.", ok=False)
    approver = Principal(
        user=mapped.user,
        roles=frozenset(mapped.roles),
        teams=frozenset(mapped.teams),
        tenant=mapped.tenant,
        issuer="slack",
    )
    approve = action["action_id"] == APPROVE_ACTION
    name = slack_user.get("username") or slack_user.get("name") or slack_user_id
    reason = f"{'approved' if approve else 'rejected'} in Slack by {name} ({slack_user_id})"
    try:
        decided = await service.decide(request_id, approver, approve, reason, via="slack")
    except ApprovalError as exc:
        return _reply(str(exc), ok=False)
    return _reply(f"Approval {decided.id} {decided.state.value} by {approver.user}.", ok=True)
