"""The detector-level result type and the helpers every detector shares."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace

from mcp_guard.findings import Severity


@dataclass(frozen=True, slots=True)
class Hit:
    """One detection inside one string, before it is tied to a JSON path.

    ``start``/``end`` index the scanned string; ``None`` means the whole value.
    """

    type: str
    category: str
    severity: Severity
    start: int | None
    end: int | None
    detail: str = ""

    def moved(self, start: int | None, end: int | None, detail: str) -> Hit:
        return replace(self, start=start, end=end, detail=detail)


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``."""
    if not text:
        return 0.0
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in Counter(text).values())


def overlaps(a: Hit, b: Hit) -> bool:
    if a.start is None or b.start is None or a.end is None or b.end is None:
        return False
    return a.start < b.end and b.start < a.end


def contains_any(text: str, needles: tuple[str, ...]) -> bool:
    """Cheap prefilter: does ``text`` contain any of the literal ``needles``?"""
    return any(n in text for n in needles)


@dataclass(frozen=True, slots=True)
class Rule:
    """A text rule: ``pattern`` runs only when the text contains one of the ``gate`` literals."""

    tactic: str
    weight: int
    gate: tuple[str, ...]
    pattern: re.Pattern[str]
