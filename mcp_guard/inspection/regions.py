"""Windows of a long string around anchor positions, running a detector on them, merging hits."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from mcp_guard.inspection.hits import Hit, overlaps

_NUMERIC_PII = frozenset({"CREDIT_CARD", "US_SSN", "PHONE", "IP_ADDRESS"})

WHOLE_TEXT = 1024
"""Strings up to this length are always scanned whole."""
_MAX_GROW = 65_536


_SPACE = re.compile(r"\s")


def _grow(text: str, spaces: list[int], lo: int, hi: int) -> tuple[int, int]:
    """Extend ``[lo, hi)`` to the surrounding whitespace (at most :data:`_MAX_GROW` each
    way), so that a long token is not cut. ``spaces``: the positions of whitespace in
    ``text``, ascending; a bisection each way keeps this logarithmic, however long the
    token (one character at a time, a long unbroken argument cost seconds per window)."""
    before = bisect.bisect_left(spaces, lo) - 1  # the last whitespace before lo
    lo = max(spaces[before] + 1 if before >= 0 else 0, lo - _MAX_GROW, 0)
    after = bisect.bisect_left(spaces, hi)  # the first whitespace at or after hi
    hi = min(spaces[after] if after < len(spaces) else len(text), hi + _MAX_GROW, len(text))
    return lo, hi


def regions(
    spans: list[tuple[int, int]], length: int, radius: int, grow: bool = False, text: str = ""
) -> list[tuple[int, int]]:
    """Merged windows of ``radius`` characters around ``spans`` (the whole text when it is short)."""
    if length <= max(WHOLE_TEXT, 2 * radius):
        return [(0, length)]
    spaces = [m.start() for m in _SPACE.finditer(text)] if grow and text else None
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        lo, hi = max(0, s - radius), min(length, e + radius)
        if spaces is not None:
            lo, hi = _grow(text, spaces, lo, hi)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def in_regions(detector: Callable[[str], list[Hit]], text: str, windows: list[tuple[int, int]]) -> list[Hit]:
    """Run ``detector`` on each window of ``text``; spans are moved back onto ``text``."""
    if len(windows) == 1 and windows[0] == (0, len(text)):
        return detector(text)
    hits: list[Hit] = []
    for lo, hi in windows:
        for h in detector(text[lo:hi]):
            if h.start is None or h.end is None:
                hits.append(h)
            else:
                hits.append(h.moved(h.start + lo, h.end + lo, h.detail))
    return list(dict.fromkeys(hits))


def map_span(hit: Hit, index: list[int]) -> Hit:
    """Move a hit found in a normalised view back onto the original string."""
    if hit.start is None or hit.end is None:
        return hit
    start = index[hit.start]
    end = index[hit.end - 1] + 1 if hit.end > hit.start else start
    return hit.moved(start, end, hit.detail)


def resolve(hits: list[Hit]) -> list[Hit]:
    """Drop duplicates and findings explained by a more specific overlapping one."""
    unique = list(dict.fromkeys(hits))
    secrets = [h for h in unique if h.category == "secret"]
    specific_secrets = [h for h in secrets if h.type != "GENERIC_SECRET"]
    ibans = [h for h in unique if h.type == "IBAN"]
    numeric = [h for h in unique if h.type in {"CREDIT_CARD", "US_SSN", "IP_ADDRESS"}]
    kept = []
    for h in unique:
        if h.category == "pii" and any(overlaps(h, s) for s in secrets):
            continue
        if h.type == "GENERIC_SECRET" and any(overlaps(h, s) for s in specific_secrets):
            continue
        if h.type in _NUMERIC_PII and any(overlaps(h, i) for i in ibans):
            continue
        if h.type == "PHONE" and any(overlaps(h, n) for n in numeric):
            continue
        kept.append(h)
    return kept
