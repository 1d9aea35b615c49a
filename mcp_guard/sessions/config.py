"""Configuration of the session store: bounds, idle expiry and the workflow-id keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SessionConfig(BaseModel):
    """Bounds of the in-memory session state.

    - ``max_sessions``: MCP and workflow sessions kept at once. Beyond it, the least
      recently used session of the principal holding the most is evicted: a principal
      opening session after session evicts its own, never those of one holding fewer.
      Principals' sessions (every call of a principal) have a table of their own, as large.
    - ``max_sessions_per_principal``: MCP and workflow sessions one principal keeps at once;
      beyond it, its own least recently used one is evicted.
    - ``idle_ttl_s``: a session not fetched from the store for this long is forgotten.
    - ``max_calls``: ring buffer of recent calls per session (oldest dropped first).
    - ``max_taints``: result findings (taint) remembered per session (oldest dropped first).
    - ``workflow_meta_keys``: ``_meta`` keys whose string value names an agent-supplied
      workflow; calls carrying the same workflow id share a workflow session.
    - ``max_workflow_id_length``: longer workflow ids are ignored (not truncated).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_sessions: int = Field(default=10_000, ge=1)
    max_sessions_per_principal: int = Field(default=1000, ge=1)
    idle_ttl_s: float = Field(default=3600.0, gt=0)
    max_calls: int = Field(default=256, ge=1)
    max_taints: int = Field(default=64, ge=1)
    workflow_meta_keys: tuple[str, ...] = ("mcp-guard/workflow",)
    max_workflow_id_length: int = Field(default=128, ge=1)
