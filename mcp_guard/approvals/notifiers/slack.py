"""A Slack incoming-webhook message (Block Kit) describing a request, with approve/reject buttons.

The buttons carry ``action_id`` :data:`APPROVE_ACTION` / :data:`REJECT_ACTION` and the
request id as ``value``; they work when the Slack app's interactivity URL points at the
gateway's Slack endpoint (``mcp_guard.approvals.slack``). The "Open" button links to
the admin API.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from mcp_guard.approvals.config import SlackChannel
from mcp_guard.approvals.models import ApprovalRequest
from mcp_guard.approvals.notifiers.base import finding_lines, key_arguments, links, post, requester, risk_text
from mcp_guard.audit.models import format_time

APPROVE_ACTION = "mcp_guard_approve"
REJECT_ACTION = "mcp_guard_reject"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(request: ApprovalRequest, public_url: str | None) -> dict[str, Any]:
    """The Block Kit message for ``request``: who, tool, key arguments, findings, risk, rules, buttons."""
    ctx = request.context
    rules = ", ".join(ctx.rules) or "none"
    fields = [
        _mrkdwn(f"*Who*\n{_escape(requester(request))}"),
        _mrkdwn(f"*Tool*\n`{_escape(ctx.tool)}`"),
        _mrkdwn(f"*Risk*\n{risk_text(request)}"),
        _mrkdwn(f"*Rules*\n{_escape(rules)}"),
        _mrkdwn(f"*Mode*\n{ctx.spec.mode}"),
        _mrkdwn(f"*Expires*\n{format_time(request.expires_at)[:19]}Z"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Approval needed: {ctx.tool}"[:150]}},
        {"type": "section", "fields": fields},
    ]
    if ctx.reason:
        blocks.append({"type": "section", "text": _mrkdwn(f"*Reason*\n{_escape(ctx.reason)}")})
    args = key_arguments(request)
    if args:
        text = "\n".join(f"{k}: {v}" for k, v in args)
        blocks.append({"type": "section", "text": _mrkdwn(f"*Arguments*\n```{_escape(text)}```")})
    findings = finding_lines(request)
    if findings:
        text = "\n".join(f"• {_escape(line)}" for line in findings)
        blocks.append({"type": "section", "text": _mrkdwn(f"*Findings*\n{text}")})
    buttons: list[dict[str, Any]] = [
        {
            "type": "button",
            "style": "primary",
            "text": {"type": "plain_text", "text": "Approve"},
            "action_id": APPROVE_ACTION,
            "value": request.id,
        },
        {
            "type": "button",
            "style": "danger",
            "text": {"type": "plain_text", "text": "Reject"},
            "action_id": REJECT_ACTION,
            "value": request.id,
        },
    ]
    view = links(request, public_url).get("view")
    if view:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open"},
                "url": view,
                "action_id": "open",
            }
        )
    blocks.append({"type": "actions", "block_id": f"mcp_guard_approval:{request.id}", "elements": buttons})
    blocks.append({"type": "context", "elements": [_mrkdwn(f"approval `{request.id}`")]})
    return {"text": f"Approval needed: {requester(request)} wants to call {ctx.tool}", "blocks": blocks}


class SlackNotifier:
    """Posts :func:`slack_message` to an incoming webhook."""

    def __init__(self, name: str, config: SlackChannel, public_url: str | None) -> None:
        self.name = name
        self._config = config
        self._public_url = public_url

    async def send(self, request: ApprovalRequest, client: httpx2.AsyncClient) -> None:
        body = json.dumps(slack_message(request, self._public_url)).encode()
        await post(client, self._config.webhook_url, body)
