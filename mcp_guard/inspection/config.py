"""Settings of the payload inspector."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["pii", "secret", "injection", "attack", "evasion"]
ALL_CATEGORIES: frozenset[Category] = frozenset({"pii", "secret", "injection", "attack", "evasion"})


class InspectionConfig(BaseModel):
    """What the :class:`~mcp_guard.inspection.Inspector` looks for, and how hard it tries.

    ``categories`` enables detector families. The gateway typically enables ``attack``
    for tool arguments only. ``max_decode_depth`` bounds nested decoding (base64 inside
    hex ...); ``max_decoded_chars`` bounds the text produced by decoding one value;
    ``max_scan_chars`` bounds how much of one string value is scanned (the rest is
    reported as a ``SCAN_TRUNCATED`` evasion finding).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: frozenset[Category] = Field(default=ALL_CATEGORIES)
    max_decode_depth: int = Field(default=2, ge=0, le=5)
    max_decoded_chars: int = Field(default=65_536, ge=0)
    min_encoded_length: int = Field(default=16, ge=8)
    max_scan_chars: int = Field(default=2_000_000, ge=1)
    max_depth: int = Field(default=64, ge=1, description="JSON nesting depth walked")
    scan_numbers: bool = Field(default=True, description="scan long integers for PII (card numbers)")

    def enabled(self, category: Category) -> bool:
        return category in self.categories
