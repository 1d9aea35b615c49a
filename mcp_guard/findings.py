"""Findings: what a detector saw in a payload, where, and how to redact it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Finding(BaseModel):
    """One detection.

    ``type`` is an upper-case identifier such as ``US_SSN``, ``CREDIT_CARD``,
    ``AWS_ACCESS_KEY``, ``PROMPT_INJECTION``, ``SQL_INJECTION``, ``ZERO_WIDTH``.
    ``category`` groups types: ``pii``, ``secret``, ``injection``, ``attack``,
    ``evasion``, ``poisoning``. ``path`` is a JSON path into the inspected value
    (``$.args.note`` or ``$.content[0].text``); ``start``/``end`` index the string
    at that path (``None`` when the finding is about the whole value).
    ``placeholder`` is the typed text that replaces the span when redacting.
    """

    model_config = ConfigDict(frozen=True)

    type: str
    category: str
    severity: Severity
    path: str
    start: int | None = None
    end: int | None = None
    detail: str = ""

    @property
    def placeholder(self) -> str:
        return f"[REDACTED:{self.type}]"
