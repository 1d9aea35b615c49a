"""Durations in policy files and controls: ``90``, ``500ms``, ``30s``, ``5m``, ``2h``, ``1d``.

A bare number is seconds. Units: ``ms``; ``s``/``sec``/``second(s)``; ``m``/``min``/
``minute(s)``; ``h``/``hour(s)``; ``d``/``day(s)``. Every duration lies between 0 and
:data:`MAX_DURATION_S` (365 days); NaN and infinity are refused.
"""

from __future__ import annotations

import math
import re

MAX_DURATION_S = 365 * 86400.0
"""The longest duration accepted anywhere (365 days)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$")
_UNIT_S = {
    "ms": 0.001,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip


def parse_duration(value: object, *, positive: bool = False) -> float:
    """Seconds in ``value``, a number of seconds or ``<number><unit>``.

    With ``positive``, 0 is refused too (for durations where 0 has no meaning).

    Raises:
        ValueError: ``value`` is not a duration, or lies outside 0 to 365 days.
    """
    if isinstance(value, str):
        seconds: float = _from_text(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    else:
        raise ValueError(f"invalid duration {value!r} (expected e.g. 30s, 5m, 2h, 1d)")
    if isinstance(seconds, float) and math.isnan(seconds):
        raise ValueError(f"invalid duration {value!r}: not a number")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"invalid duration {value!r}: must be at most 365 days")
    if positive and seconds == 0:
        raise ValueError(f"invalid duration {value!r}: must be longer than 0")
    return float(seconds)


def _from_text(text: str) -> float:
    m = _DURATION.match(text.lower())
    if m is None or (m.group(2) is not None and m.group(2) not in _UNIT_S):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 2h, 1d)")
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
