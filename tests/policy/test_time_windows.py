"""Time windows: time zones, DST, over-midnight windows, day lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mcp_guard.decision import Decision

from .helpers import load, request

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def inside(tmp_path: Path, spec: dict[str, str], now: datetime) -> bool:
    policies = load(tmp_path, f"rules:\n  - {{id: t, when: {{time: {json.dumps(spec)}}}, decision: BLOCK}}\n")
    return policies.evaluate(request(now=now)).decision is Decision.BLOCK


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # Winter (CET, UTC+1): 08:00 local is 07:00 UTC.
        (datetime(2026, 1, 5, 6, 59, tzinfo=UTC), False),
        (datetime(2026, 1, 5, 7, 0, tzinfo=UTC), True),
        # Summer (CEST, UTC+2): 08:00 local is 06:00 UTC.
        (datetime(2026, 7, 6, 6, 0, tzinfo=UTC), True),
        (datetime(2026, 7, 6, 5, 59, tzinfo=UTC), False),
        # Day of the spring DST change (Sunday 2026-03-29): 03:00 CEST = 01:00 UTC.
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), False),  # 01:59 CET
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), True),  # 03:00 CEST
    ],
)
def test_windows_are_read_in_the_rules_time_zone_across_dst(
    tmp_path: Path, utc: datetime, expected: bool
) -> None:
    spec = {"inside": "03:00-20:00", "tz": "Europe/Berlin"} if utc.month == 3 else {"inside": "08:00-20:00"}
    spec["tz"] = "Europe/Berlin"
    assert inside(tmp_path, spec, utc) is expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 1, 9, 21, 59, tzinfo=BERLIN), False),  # Friday before the window
        (datetime(2026, 1, 9, 22, 0, tzinfo=BERLIN), True),  # Friday 22:00
        (datetime(2026, 1, 10, 5, 59, tzinfo=BERLIN), True),  # Saturday morning: Friday's window
        (datetime(2026, 1, 10, 6, 0, tzinfo=BERLIN), False),
        (datetime(2026, 1, 10, 23, 0, tzinfo=BERLIN), False),  # Saturday night: not a listed day
        (datetime(2026, 1, 5, 1, 0, tzinfo=BERLIN), False),  # Monday 01:00 belongs to Sunday
        (datetime(2026, 1, 6, 1, 0, tzinfo=BERLIN), True),  # Tuesday 01:00 belongs to Monday
    ],
)
def test_over_midnight_windows_belong_to_the_day_they_start(
    tmp_path: Path, local: datetime, expected: bool
) -> None:
    spec = {"inside": "22:00-06:00", "days": "mon-fri", "tz": "Europe/Berlin"}
    assert inside(tmp_path, spec, local) is expected


def test_outside_is_the_complement_of_inside_including_other_days(tmp_path: Path) -> None:
    spec = {"outside": "09:00-17:00", "days": "mon-fri", "tz": "America/New_York"}
    assert inside(tmp_path, spec, datetime(2026, 1, 5, 8, 59, tzinfo=NEW_YORK)) is True
    assert inside(tmp_path, spec, datetime(2026, 1, 5, 9, 0, tzinfo=NEW_YORK)) is False
    assert inside(tmp_path, spec, datetime(2026, 1, 4, 12, 0, tzinfo=NEW_YORK)) is True  # Sunday


def test_days_alone_select_whole_days_and_accept_lists(tmp_path: Path) -> None:
    spec: dict[str, object] = {"days": ["sat", "sun"], "tz": "UTC"}
    policies = load(tmp_path, f"rules:\n  - {{id: t, when: {{time: {json.dumps(spec)}}}, decision: BLOCK}}\n")
    assert policies.evaluate(request(now=datetime(2026, 1, 10, 0, 0, tzinfo=UTC))).decision is Decision.BLOCK
    assert policies.evaluate(request(now=datetime(2026, 1, 9, 23, 59, tzinfo=UTC))).decision is Decision.ALLOW


def test_wrapping_day_ranges_and_24_00_are_accepted(tmp_path: Path) -> None:
    spec = {"inside": "18:00-24:00", "days": "fri-mon", "tz": "UTC"}
    assert inside(tmp_path, spec, datetime(2026, 1, 11, 23, 59, tzinfo=UTC)) is True  # Sunday
    assert inside(tmp_path, spec, datetime(2026, 1, 7, 23, 59, tzinfo=UTC)) is False  # Wednesday


def test_naive_times_are_read_as_utc(tmp_path: Path) -> None:
    spec = {"inside": "10:00-11:00", "tz": "UTC"}
    assert inside(tmp_path, spec, datetime(2026, 1, 5, 10, 30)) is True
