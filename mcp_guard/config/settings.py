"""``mcp-guard.yaml``: how the gateway itself runs (listeners, limits, identity, audit)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_guard.audit import AuditConfig
from mcp_guard.config.interpolate import interpolate
from mcp_guard.config.yaml_source import load_yaml, validate_document
from mcp_guard.errors import ConfigError
from mcp_guard.identity.config import AuthConfig
from mcp_guard.pipeline.access import Grant
from mcp_guard.principal import Principal


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra ``Host`` values accepted (DNS-rebinding protection); loopback names are always allowed."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Extra ``Origin`` values accepted; loopback origins are always allowed."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_sessions: int = Field(default=1000, gt=0)
    session_idle_timeout_s: float = Field(default=1800.0, gt=0)
    list_page_size: int = Field(default=1000, gt=0)


class AccessSettings(BaseModel):
    """Who may see and call which tools, until a policy folder takes over.

    ``allow_all`` (the default for local use) shows every tool to every principal;
    with ``grants`` a principal sees a tool only when a grant covers it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_all: bool = True
    grants: list[Grant] = Field(default_factory=list)


class AuditSettings(AuditConfig):
    """The audit log (see docs/audit.md) plus how tool arguments are stored in it."""

    arguments: Literal["redacted", "full", "digest"] = "redacted"


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthConfig | None = None
    """Bearer-token verification (HTTP) and the stdio token (``MCP_GUARD_TOKEN``)."""
    local_principal: Principal | None = None
    """A fixed identity for every client when ``auth`` is absent. Only for local use:
    HTTP then refuses non-loopback listen addresses."""
    access: AccessSettings = Field(default_factory=AccessSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    max_argument_bytes: int = Field(default=1024 * 1024, gt=0)


def load_settings(path: str | Path | None, environ: Mapping[str, str] | None = None) -> GatewaySettings:
    """Load ``mcp-guard.yaml``; no path means all defaults.

    Raises:
        ConfigError: every problem as ``file:line: key: message``.
    """
    if path is None:
        return GatewaySettings()
    doc = load_yaml(path)
    problems: list[str] = []
    data = interpolate(doc, os.environ if environ is None else environ, problems)
    if problems:
        raise ConfigError(problems)
    return validate_document(GatewaySettings, doc, data if data is not None else {})
