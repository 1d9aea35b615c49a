"""Notifiers: webhook, Slack, Microsoft Teams. Each delivers one request once; the service retries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mcp_guard.approvals.config import ApprovalConfig, SlackChannel, TeamsChannel, WebhookChannel
from mcp_guard.approvals.notifiers.base import DeliveryError, Notifier
from mcp_guard.approvals.notifiers.slack import SlackNotifier, slack_message
from mcp_guard.approvals.notifiers.teams import TeamsNotifier, teams_card
from mcp_guard.approvals.notifiers.webhook import WebhookNotifier, webhook_body, webhook_signature


def build_notifiers(config: ApprovalConfig, clock: Callable[[], datetime]) -> dict[str, Notifier]:
    """One notifier per configured channel, by name."""
    out: dict[str, Notifier] = {}
    for name, channel in config.channels.items():
        if isinstance(channel, WebhookChannel):
            out[name] = WebhookNotifier(name, channel, config.public_url, clock)
        elif isinstance(channel, SlackChannel):
            out[name] = SlackNotifier(name, channel, config.public_url)
        elif isinstance(channel, TeamsChannel):
            out[name] = TeamsNotifier(name, channel, config.public_url)
    return out


__all__ = [
    "DeliveryError",
    "Notifier",
    "SlackNotifier",
    "TeamsNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "slack_message",
    "teams_card",
    "webhook_body",
    "webhook_signature",
]
