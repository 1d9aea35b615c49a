"""``PinningConfig``: how new and changed tool definitions are treated."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PATH = Path("var/pins.db")


class PinMode(StrEnum):
    TRUST_ON_FIRST_USE = "trust_on_first_use"
    """The first definition seen for a tool is pinned automatically."""
    REQUIRE_APPROVAL = "require_approval"
    """A tool never seen before is quarantined until an operator accepts it."""


class PinningConfig(BaseModel):
    """The ``pinning:`` section of the gateway settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: PinMode = PinMode.TRUST_ON_FIRST_USE
    hide_poisoned: bool = True
    """A definition with tool-poisoning findings is hidden, refused and never pinned automatically."""
    path: Path = DEFAULT_PATH
    """The SQLite pin database (WAL); the ``mcp-guard tools`` commands take it as ``--db``."""
    busy_timeout_ms: int = Field(default=5000, ge=0)
    """How long a writer waits for another process (the CLI, another gateway) holding the lock."""
