"""``upstreams.yaml``: which MCP servers sit behind the gateway and how to reach them.

Two shapes are accepted:

* mcp-guard's own: ``upstreams: {name: {type: stdio|sse|streamable-http, ...}}``
* the host shape users already have: Claude Desktop's ``mcpServers: {...}`` (and VS
  Code's ``servers: {...}``), pasted unchanged.

Every error names ``file:line: key``; unknown keys are errors.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mcp_guard.config.interpolate import interpolate
from mcp_guard.config.yaml_source import YamlDocument, load_yaml, validation_problems
from mcp_guard.errors import ConfigError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*(_[A-Za-z0-9-]+)*$")
"""Upstream names and prefixes: letters, digits, '-' and single '_' (``__`` separates namespaces)."""


class _UpstreamBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str | None = None
    """Tool-name prefix; ``None`` means the upstream's name, ``""`` means no prefix."""
    call_timeout_s: float = Field(default=60.0, gt=0, le=86_400)
    connect_timeout_s: float = Field(default=30.0, gt=0, le=3_600)
    environment: str = "prod"
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=4096)
    """The largest JSON-RPC message accepted from this upstream; a longer one resets the connection."""
    max_listing_items: int = Field(default=10_000, ge=1)
    """The most items one listing (all pages of ``tools/list``, ``resources/list``, ...) may hold."""
    max_listing_bytes: int = Field(default=32 * 1024 * 1024, ge=4096)
    """The most JSON one listing's items may add up to; paging stops there, keeping what fits."""
    max_tool_description_bytes: int = Field(default=64 * 1024, ge=1)
    """A tool whose description is longer (UTF-8) is skipped as invalid."""
    max_tool_definition_bytes: int = Field(default=256 * 1024, ge=1024)
    """A tool whose whole definition is longer (as JSON) is skipped as invalid."""
    disabled: bool = False

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str | None) -> str | None:
        if value and not NAME_PATTERN.match(value):
            raise ValueError("prefix may hold letters, digits, '-' and single '_' only")
        return value


class StdioUpstream(_UpstreamBase):
    type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class HttpUpstream(_UpstreamBase):
    type: Literal["streamable-http", "http", "sse"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("url must be an absolute http:// or https:// URL")
        return value


UpstreamConfig = StdioUpstream | HttpUpstream


class _HostEntry(BaseModel):
    """One server in Claude Desktop / VS Code shape; ``type`` is inferred when absent."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["stdio", "sse", "http", "streamable-http"] | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    disabled: bool = False

    @model_validator(mode="after")
    def _one_transport(self) -> _HostEntry:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either 'command' (stdio) or 'url' (sse / http)")
        return self

    def to_upstream(self) -> dict[str, Any]:
        if self.command is not None:
            return {
                "type": "stdio",
                "command": self.command,
                "args": self.args,
                "env": self.env,
                "cwd": self.cwd,
                "disabled": self.disabled,
            }
        kind = self.type if self.type in ("sse", "http", "streamable-http") else "streamable-http"
        return {"type": kind, "url": self.url, "headers": self.headers, "disabled": self.disabled}


class UpstreamsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    upstreams: dict[str, UpstreamConfig]

    def enabled(self) -> dict[str, UpstreamConfig]:
        return {name: up for name, up in self.upstreams.items() if not up.disabled}

    def prefix_of(self, name: str) -> str:
        prefix = self.upstreams[name].prefix
        return name if prefix is None else prefix


def load_upstreams(path: str | Path, environ: Mapping[str, str] | None = None) -> UpstreamsFile:
    """Load and validate an upstreams file (YAML or JSON).

    ``${PYTHON}`` stands for the interpreter running mcp-guard unless the environment
    sets it. Relative ``cwd`` values and relative command paths starting with ``./`` are
    resolved against the file's folder, so the file works from anywhere.

    Raises:
        ConfigError: listing every problem as ``file:line: key: message``.
    """
    doc = load_yaml(path)
    problems: list[str] = []
    variables = {"PYTHON": sys.executable, **(os.environ if environ is None else environ)}
    data = interpolate(doc, variables, problems)
    if problems:
        raise ConfigError(problems)
    upstreams = _normalise(doc, data)
    base = Path(path).resolve().parent
    parsed: dict[str, UpstreamConfig] = {}
    for name, raw in upstreams.items():
        key = ("upstreams", name)
        if not NAME_PATTERN.match(name):
            problems.append(
                f"{doc.where(key)}: upstreams.{name}: name may hold letters, digits, '-' and single '_' only"
            )
            continue
        try:
            parsed[name] = _parse_one(raw)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, doc, prefix=key, data=raw))
    if problems:
        raise ConfigError(problems)
    resolved = {name: _resolve_paths(up, base) for name, up in parsed.items()}
    result = UpstreamsFile(upstreams=resolved)
    _check_prefixes(result, doc)
    return result


def _normalise(doc: YamlDocument, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError([f"{doc.where(())}: expected a mapping with 'upstreams' or 'mcpServers'"])
    shapes = [k for k in ("upstreams", "mcpServers", "servers") if k in data]
    unknown = [k for k in data if k not in ("upstreams", "mcpServers", "servers", "inputs")]
    if unknown:
        raise ConfigError(
            [
                f"{doc.where((str(unknown[0]),))}: {unknown[0]}: unknown key "
                "(expected 'upstreams' or 'mcpServers')"
            ]
        )
    if len(shapes) != 1:
        raise ConfigError([f"{doc.where(())}: give exactly one of 'upstreams', 'mcpServers' or 'servers'"])
    shape = shapes[0]
    servers = data[shape]
    if not isinstance(servers, dict):
        raise ConfigError([f"{doc.where((shape,))}: {shape}: expected a mapping of server names"])
    if shape == "upstreams":
        return servers
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, entry in servers.items():
        try:
            out[name] = _HostEntry.model_validate(entry).to_upstream()
        except ValidationError as exc:
            problems.extend(validation_problems(exc, doc, prefix=(shape, name), data=entry))
    if problems:
        raise ConfigError(problems)
    doc.lines.update(
        {
            ("upstreams", n, *rest): line
            for (s, n, *rest), line in ((k, v) for k, v in doc.lines.items() if len(k) >= 2 and k[0] == shape)
        }
    )
    return out


def _parse_one(raw: Any) -> UpstreamConfig:
    if isinstance(raw, dict) and raw.get("type", "stdio") != "stdio":
        return HttpUpstream.model_validate(raw)
    return StdioUpstream.model_validate(raw)


def _resolve_paths(up: UpstreamConfig, base: Path) -> UpstreamConfig:
    if not isinstance(up, StdioUpstream):
        return up
    cwd = str((base / up.cwd).resolve()) if up.cwd else None
    command = str((base / up.command).resolve()) if up.command.startswith("./") else up.command
    return up.model_copy(update={"cwd": cwd, "command": command})


def _check_prefixes(upstreams: UpstreamsFile, doc: YamlDocument) -> None:
    """Two upstreams with the same non-empty prefix would mix their tools; refuse that.

    Empty prefixes are checked against actual tool names when the catalog is built.
    """
    seen: dict[str, str] = {}
    for name in upstreams.upstreams:
        prefix = upstreams.prefix_of(name)
        if prefix and prefix in seen:
            raise ConfigError(
                [
                    f"{doc.where(('upstreams', name))}: upstreams.{name}: prefix '{prefix}' "
                    f"is already used by upstream '{seen[prefix]}'"
                ]
            )
        if prefix:
            seen[prefix] = name
