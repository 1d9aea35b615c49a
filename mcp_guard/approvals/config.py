"""Configuration of approvals: storage, signing key, channels, retries, Slack interactivity.

URLs and secrets may be written as ``${ENV}`` in the YAML file; the configuration
loader interpolates them before these models see them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_guard.approvals.models import Approvers


class WebhookChannel(BaseModel):
    """A generic JSON webhook, signed with ``X-MCP-Guard-Signature: sha256=<HMAC-SHA256 of the body>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"] = "webhook"
    url: str
    secret: str = Field(min_length=16)
    headers: dict[str, str] = Field(default_factory=dict)


class SlackChannel(BaseModel):
    """A Slack incoming webhook (``https://hooks.slack.com/services/...``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["slack"] = "slack"
    webhook_url: str


class TeamsChannel(BaseModel):
    """A Microsoft Teams incoming webhook or Workflows (Power Automate) URL taking an Adaptive Card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["teams"] = "teams"
    webhook_url: str


ChannelConfig = Annotated[WebhookChannel | SlackChannel | TeamsChannel, Field(discriminator="type")]


class SlackApprover(BaseModel):
    """The mcp-guard identity a Slack user acts as when clicking approve/reject."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str
    roles: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    tenant: str | None = None
    """The approver's tenant: it decides only that tenant's requests (and those of
    principals without one). Without it, the approver acts across tenants."""


class SlackInteractivity(BaseModel):
    """Slack's interactivity endpoint: the app's signing secret and the Slack user -> approver map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signing_secret: str = Field(min_length=8)
    users: dict[str, SlackApprover] = Field(default_factory=dict)
    """Keyed by Slack user id (``U0123ABCD``). Unmapped Slack users cannot decide."""
    max_age_s: int = Field(default=300, gt=0)
    """Requests whose ``X-Slack-Request-Timestamp`` is further than this from now are refused."""


class RetryPolicy(BaseModel):
    """Exponential backoff for notifier delivery: ``initial_s * factor**n``, at most ``max_s``.

    Deliveries are retried until the request is no longer pending or its ``ttl`` ends.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(default=2.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    max_s: float = Field(default=120.0, gt=0)


class ApprovalConfig(BaseModel):
    """Where approvals are kept and how approvers are reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Path("var/approvals.db")
    """The SQLite database (WAL mode); pending and approved requests survive restarts."""
    signing_key_path: Path = Path("var/keys/approvals-signing.pem")
    """Ed25519 key signing every decision (created on first use, mode 0600)."""
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    """Notifiers by name; a rule's ``channels:`` selects among these names."""
    slack: SlackInteractivity | None = None
    """Enables the Slack interactivity endpoint (approve/reject buttons)."""
    public_url: str | None = None
    """Where approvers reach the admin API, e.g. ``https://gw.example.com/admin/approvals``;
    notifications link to ``{public_url}/{id}``."""
    default_approvers: Approvers = Field(default_factory=Approvers)
    """Used when a rule's ``approval:`` block names no approvers. Empty: nobody can decide."""
    admin_roles: tuple[str, ...] = ("approvals-admin",)
    """Roles that may list and read every request in the admin API (deciding still needs a match)."""
    max_pending_per_principal: int = Field(default=20, ge=1)
    """At most this many requests pending at once per principal (user, agent and tenant).
    A call that would file one more is blocked at once; nothing is filed or notified."""
    progress_interval_s: float = Field(default=5.0, gt=0)
    """Hold mode: how often ``wait`` calls its ``on_tick`` (the caller sends MCP progress)."""
    poll_interval_s: float = Field(default=2.0, gt=0)
    """Hold mode: how often a waiter re-reads the database (decisions made by the CLI)."""
    sweep_interval_s: float = Field(default=10.0, gt=0)
    """How often overdue requests are expired in the background."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    http_timeout_s: float = Field(default=10.0, gt=0)
    busy_timeout_ms: int = Field(default=2000, ge=0)
