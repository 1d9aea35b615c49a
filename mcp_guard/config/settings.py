"""``mcp-guard.yaml``: how the gateway itself runs (listeners, identity, inspection, state)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from mcp_guard.approvals import ApprovalConfig
from mcp_guard.audit import AuditConfig
from mcp_guard.config.interpolate import interpolate
from mcp_guard.config.yaml_source import load_yaml, validate_document
from mcp_guard.controls import RawSpec
from mcp_guard.errors import ConfigError
from mcp_guard.identity.config import AuthConfig
from mcp_guard.inspection import InspectionConfig
from mcp_guard.pinning import PinningConfig
from mcp_guard.pipeline.access import Grant
from mcp_guard.pipeline.results import ResultInspectionSettings
from mcp_guard.principal import Principal
from mcp_guard.risk import RiskConfig
from mcp_guard.sessions import SessionConfig


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """The address to listen on. ``0.0.0.0`` or ``::`` listens on every interface (an
    empty value would too, silently, so it is refused)."""
    port: int = Field(default=8765, ge=0, le=65535)
    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra ``Host`` values accepted (DNS-rebinding protection); loopback names are always allowed."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Extra ``Origin`` values accepted; loopback origins are always allowed."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_sessions: int = Field(default=1000, gt=0)
    """Streamable-HTTP sessions open at once; past it a request to open one gets 503."""
    max_sessions_per_principal: int = Field(default=100, gt=0)
    """Sessions (streamable HTTP and SSE) one principal holds at once; past it a request to
    open one gets 429 naming this bound, and no open session is closed (mcp_guard/session_bounds.py).
    At or above ``max_sessions`` it no longer keeps one principal from taking every session."""
    session_idle_timeout_s: float = Field(default=1800.0, gt=0)
    list_page_size: int = Field(default=1000, gt=0)
    fast_stdio_calls: bool = True
    """Answer a stdio client's ``tools/call`` without the SDK's session (mcp_guard/stdio_lane.py);
    false sends every message through the SDK."""
    fast_http_calls: bool = True
    """Answer a streamable-HTTP client's ``tools/call`` without the SDK's session
    (mcp_guard/http_lane.py); false sends every request through the SDK."""
    json_responses: bool = False
    """Answer each streamable-HTTP request with one JSON body instead of an SSE stream: faster
    (docs/benchmarks.md), but a client then gets no progress notifications during a call."""

    @field_validator("host")
    @classmethod
    def _one_address(cls, host: str) -> str:
        if not host or host != host.strip() or any(c.isspace() for c in host):
            raise ValueError(
                "must be one address or host name without spaces (0.0.0.0 or :: for every interface)"
            )
        return host


class AccessSettings(BaseModel):
    """Who may see and call which tools when no policy folder is given.

    ``allow_all`` (the default for local use) shows every tool to every principal;
    with ``grants`` a principal sees a tool only when a grant covers it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_all: bool = True
    grants: list[Grant] = Field(default_factory=list)


class AuditSettings(AuditConfig):
    """The audit log (see docs/audit.md) plus how tool arguments are stored in it.

    The gateway commits each decision entry before forwarding the call. ``synchronous:
    FULL`` (the default) fsyncs each commit before the call is forwarded, so entries
    survive power loss; ``OVERLAPPED`` writes the entry before forwarding and fsyncs it
    while the upstream works, returning no result before it is on disk; ``NORMAL``
    survives a killed gateway but not power loss (docs/audit.md, Durability).
    """

    arguments: Literal["redacted", "full", "digest"] = "redacted"


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Path("var")
    """Where state files live unless a section names its own path: audit.db, approvals.db,
    pins.db, controls.db, baselines.db and the signing keys under keys/. Relative paths in
    a settings file (this one included) are relative to that file's folder."""
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthConfig | None = None
    """Bearer-token verification (HTTP) and the stdio token (``MCP_GUARD_TOKEN``)."""
    local_principal: Principal | None = None
    """A fixed identity for every client when ``auth`` is absent. Only for local use:
    HTTP then refuses non-loopback listen addresses."""
    access: AccessSettings = Field(default_factory=AccessSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    inspection: InspectionConfig = Field(default_factory=InspectionConfig)
    results: ResultInspectionSettings = Field(default_factory=ResultInspectionSettings)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    approvals: ApprovalConfig = Field(default_factory=ApprovalConfig)
    pinning: PinningConfig = Field(default_factory=PinningConfig)
    controls: dict[
        Literal["limits", "budgets", "timeouts", "breakers", "concurrency", "result_bounds"], Any
    ] = Field(default_factory=dict)
    """Operational controls (docs/controls.md); ``limits`` and ``budgets`` may also live in policy files."""
    _control_lines: dict[str, int] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="mcp-guard.yaml")
    max_argument_bytes: int = Field(default=1024 * 1024, gt=0)

    def control_specs(self) -> list[RawSpec]:
        """The ``controls`` items with the file and line they came from (for error messages)."""
        return [
            RawSpec(self._source, self._control_lines.get(kind, 0), kind, data)
            for kind, data in self.controls.items()
        ]

    def state_path(self, name: str) -> Path:
        return self.state_dir / name

    def with_state_dir(self) -> GatewaySettings:
        """Every state path still at its built-in default, moved under ``state_dir``."""
        default = Path("var")
        audit, approvals, pinning = self.audit, self.approvals, self.pinning

        def moved(path: Path) -> Path:
            return self.state_dir / path.relative_to(default) if path.is_relative_to(default) else path

        return self.model_copy(
            update={
                "audit": audit.model_copy(
                    update={"path": moved(audit.path), "signing_key_path": moved(audit.signing_key_path)}
                ),
                "approvals": approvals.model_copy(
                    update={
                        "path": moved(approvals.path),
                        "signing_key_path": moved(approvals.signing_key_path),
                    }
                ),
                "pinning": pinning.model_copy(update={"path": moved(pinning.path)}),
            }
        )


def load_settings(path: str | Path | None, environ: Mapping[str, str] | None = None) -> GatewaySettings:
    """Load ``mcp-guard.yaml``; no path means all defaults.

    Raises:
        ConfigError: every problem as ``file:line: key: message``.
    """
    if path is None:
        return GatewaySettings().with_state_dir()
    doc = load_yaml(path)
    problems: list[str] = []
    data = interpolate(doc, os.environ if environ is None else environ, problems)
    if problems:
        raise ConfigError(problems)
    settings = validate_document(GatewaySettings, doc, data if data is not None else {})
    settings = _relative_to(settings, Path(path).resolve().parent)
    settings._source = doc.file
    settings._control_lines = {kind: doc.line_of(("controls", kind)) for kind in settings.controls}
    return settings.with_state_dir()


def _relative_to(settings: GatewaySettings, base: Path) -> GatewaySettings:
    """Relative paths in a settings file mean "next to that file", wherever mcp-guard is started
    from (an MCP host such as Claude Desktop starts it in an arbitrary working directory)."""

    def anchored(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    def section(model: Any, *fields: str) -> Any:
        explicit = model.model_fields_set
        return model.model_copy(update={f: anchored(getattr(model, f)) for f in fields if f in explicit})

    update: dict[str, Any] = {
        "state_dir": anchored(settings.state_dir),
        "audit": section(settings.audit, "path", "signing_key_path"),
        "approvals": section(settings.approvals, "path", "signing_key_path"),
        "pinning": section(settings.pinning, "path"),
    }
    if settings.auth is not None:
        keys = [
            key.model_copy(
                update={
                    f: str(anchored(Path(getattr(key, f))))
                    for f in ("public_key_file", "jwks_file")
                    if getattr(key, f)
                }
            )
            for key in settings.auth.keys
        ]
        update["auth"] = settings.auth.model_copy(update={"keys": keys})
    return settings.model_copy(update=update)
