"""Durations in policy files and controls: one grammar, one range (0 to 365 days)."""

from __future__ import annotations

import pytest

from mcp_guard.durations import MAX_DURATION_S, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
        ("30", 30.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("2 hours", 7200.0),
        ("1d", 86400.0),
        ("10 Minutes", 600.0),
        ("365d", MAX_DURATION_S),
    ],
)
def test_durations_are_seconds_or_a_number_with_a_unit(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("forever", "invalid duration 'forever' (expected e.g. 30s, 5m, 2h, 1d)"),
        ("5 fortnights", "invalid duration '5 fortnights' (expected e.g. 30s, 5m, 2h, 1d)"),
        ("-5s", "invalid duration '-5s' (expected e.g. 30s, 5m, 2h, 1d)"),
        (True, "invalid duration True (expected e.g. 30s, 5m, 2h, 1d)"),
        (None, "invalid duration None (expected e.g. 30s, 5m, 2h, 1d)"),
        (-1, "invalid duration -1: must not be negative"),
        (float("nan"), "invalid duration nan: not a number"),
        (float("inf"), "invalid duration inf: must be at most 365 days"),
        ("366d", "invalid duration '366d': must be at most 365 days"),
        ("99999999999d", "invalid duration '99999999999d': must be at most 365 days"),
        (10**400, "must be at most 365 days"),
        ("9" * 400, "must be at most 365 days"),
    ],
)
def test_a_bad_or_out_of_range_duration_is_refused_with_the_reason(value: object, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(value)
    assert message in str(exc.value)


@pytest.mark.parametrize("value", [0, 0.0, "0s", "0ms"])
def test_zero_is_refused_where_a_duration_must_be_positive(value: object) -> None:
    assert parse_duration(value) == 0.0
    with pytest.raises(ValueError, match="must be longer than 0"):
        parse_duration(value, positive=True)
