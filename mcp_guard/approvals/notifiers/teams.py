"""A Microsoft Teams Adaptive Card (incoming webhook or Workflows URL) describing a request.

Teams webhooks cannot call back, so the card links to the admin API (``Action.OpenUrl``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from mcp_guard.approvals.config import TeamsChannel
from mcp_guard.approvals.models import ApprovalRequest
from mcp_guard.approvals.notifiers.base import finding_lines, key_arguments, links, post, requester, risk_text
from mcp_guard.audit.models import format_time

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def teams_card(request: ApprovalRequest, public_url: str | None) -> dict[str, Any]:
    """The Teams message: one Adaptive Card 1.4 attachment."""
    ctx = request.context
    facts = [
        {"title": "Who", "value": requester(request)},
        {"title": "Tool", "value": ctx.tool},
        {"title": "Risk", "value": risk_text(request)},
        {"title": "Rules", "value": ", ".join(ctx.rules) or "none"},
        {"title": "Mode", "value": ctx.spec.mode},
        {"title": "Expires", "value": format_time(request.expires_at)[:19] + "Z"},
        {"title": "Approval id", "value": request.id},
    ]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": f"Approval needed: {ctx.tool}"},
        {"type": "FactSet", "facts": facts},
    ]
    if ctx.reason:
        body.append({"type": "TextBlock", "wrap": True, "text": f"**Reason:** {ctx.reason}"})
    args = key_arguments(request)
    if args:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Arguments"})
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in args]})
    findings = finding_lines(request)
    if findings:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Findings"})
        body.append({"type": "TextBlock", "wrap": True, "text": "\n".join(f"- {f}" for f in findings)})
    actions = [
        {"type": "Action.OpenUrl", "title": title, "url": url}
        for title, url in (("Review", links(request, public_url).get("view")),)
        if url
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


class TeamsNotifier:
    """Posts :func:`teams_card` to a Teams webhook or Workflows URL."""

    def __init__(self, name: str, config: TeamsChannel, public_url: str | None) -> None:
        self.name = name
        self._config = config
        self._public_url = public_url

    async def send(self, request: ApprovalRequest, client: httpx2.AsyncClient) -> None:
        body = json.dumps(teams_card(request, public_url=self._public_url)).encode()
        await post(client, self._config.webhook_url, body)
