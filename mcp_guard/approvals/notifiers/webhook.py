"""A generic JSON webhook, signed with HMAC-SHA256.

Headers: ``X-MCP-Guard-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the
secret>``, ``X-MCP-Guard-Timestamp: <unix seconds>`` (the same value as the body's
``sent_at``, which the signature covers), ``X-MCP-Guard-Event: approval.requested``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx2

from mcp_guard.approvals.config import WebhookChannel
from mcp_guard.approvals.models import ApprovalRequest
from mcp_guard.approvals.notifiers.base import links, post

SIGNATURE_HEADER = "X-MCP-Guard-Signature"
TIMESTAMP_HEADER = "X-MCP-Guard-Timestamp"
EVENT = "approval.requested"


def webhook_signature(secret: str, body: bytes) -> str:
    """The ``X-MCP-Guard-Signature`` value for ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_body(request: ApprovalRequest, public_url: str | None, sent_at: int) -> dict[str, Any]:
    """The JSON the webhook receives: the event, the full request (context included) and links."""
    return {
        "event": EVENT,
        "sent_at": sent_at,
        "approval": request.model_dump(mode="json"),
        "links": links(request, public_url),
    }


class WebhookNotifier:
    """Posts :func:`webhook_body` to the configured URL with the HMAC signature header."""

    def __init__(
        self, name: str, config: WebhookChannel, public_url: str | None, clock: Callable[[], datetime]
    ) -> None:
        self.name = name
        self._config = config
        self._public_url = public_url
        self._clock = clock

    async def send(self, request: ApprovalRequest, client: httpx2.AsyncClient) -> None:
        sent_at = int(self._clock().timestamp())
        body = json.dumps(webhook_body(request, self._public_url, sent_at), separators=(",", ":")).encode()
        headers = {
            **self._config.headers,
            SIGNATURE_HEADER: webhook_signature(self._config.secret, body),
            TIMESTAMP_HEADER: str(sent_at),
            "X-MCP-Guard-Event": EVENT,
        }
        await post(client, self._config.url, body, headers)
