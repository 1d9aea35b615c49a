"""Time windows: ``"08:00-20:00"`` on some weekdays, read in a time zone.

A window ``start-end`` contains the local times ``start <= t < end``. When ``end`` is
earlier than ``start`` the window runs over midnight (``22:00-06:00``) and belongs to
the day it *starts* on: with ``days: fri`` it covers Friday 22:00 to Saturday 06:00.
Local times come from the IANA zone, so DST changes are handled by ``zoneinfo``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True)
class TimeWindow:
    """Minutes since local midnight ``[start, end)`` on ``days`` (0 = Monday) in ``zone``."""

    start: int
    end: int
    days: frozenset[int]
    zone: tzinfo

    def contains(self, now: datetime) -> bool:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        local = now.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        if minute >= self.start:
            return day in self.days
        if minute < self.end:
            return (local - timedelta(days=1)).weekday() in self.days
        return False


def parse_zone(name: object) -> tzinfo:
    """Raises ValueError for an unknown IANA zone name."""
    if not isinstance(name, str):
        raise ValueError(f"time zone must be a string, not {name!r}")
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def parse_window(text: object) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` as minutes; ``24:00`` is allowed as an end.

    Raises:
        ValueError: malformed, out of range, or empty (start equals end).
    """
    if not isinstance(text, str):
        raise ValueError(f'time window must be a quoted string like "08:00-20:00", not {text!r}')
    m = _WINDOW.match(text)
    if m is None:
        raise ValueError(f'invalid time window {text!r} (expected "HH:MM-HH:MM")')
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"invalid time window {text!r}: hour or minute out of range")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"invalid time window {text!r}: start equals end")
    return start, end


def parse_days(value: object) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``[mon, wed]`` or ``"daily"`` as weekday numbers.

    Raises:
        ValueError: an unknown day name.
    """
    if isinstance(value, str):
        if value.strip().lower() in ("daily", "all", "*"):
            return ALL_DAYS
        parts = [p.strip() for p in value.split(",")]
    elif isinstance(value, list):
        parts = [str(p).strip() for p in value]
    else:
        raise ValueError(f'days must be like "mon-fri" or [sat, sun], not {value!r}')
    days: set[int] = set()
    for part in parts:
        lo, _, hi = part.lower().partition("-")
        a = _day(lo, value)
        b = _day(hi, value) if hi else a
        i = a
        while True:
            days.add(i)
            if i == b:
                break
            i = (i + 1) % 7
    return frozenset(days)


def _day(name: str, whole: object) -> int:
    key = name[:3]
    if key not in DAY_NAMES or not DAY_NAMES[DAY_NAMES.index(key)].startswith(name[:3]):
        raise ValueError(f"unknown day {name!r} in {whole!r} (use mon, tue, ... sun)")
    return DAY_NAMES.index(key)
