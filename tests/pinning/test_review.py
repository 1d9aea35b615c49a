"""Reviewing upstream listings: trust on first use, rug pulls, approval mode."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.findings import Finding
from mcp_guard.inspection import scan_tool_definition
from mcp_guard.pinning import PinningConfig, PinStore, QuarantineReason, fingerprint
from tests.pinning.tools import (
    POISONED_DESCRIPTION,
    Clock,
    adder,
    names,
    opened,
    weather,
    with_city_description,
)

pytestmark = pytest.mark.anyio


async def test_first_sight_pins_the_definition_and_allows_it(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        review = await pins.review("wx", [weather()])
        records = await pins.records()
    assert names(review.allowed) == ["get_weather"]
    assert review.quarantined == ()
    assert [(e["event"], e["tool"], e["fingerprint"]) for e in review.events] == [
        ("pinned", "get_weather", fingerprint(weather()))
    ]
    assert records[0].pin is not None and records[0].pin.pinned_by == "trust-on-first-use"


async def test_an_unchanged_definition_stays_allowed_across_a_reopen(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather()])
    async with opened(tmp_path / "pins.db") as pins:
        review = await pins.review("wx", [weather()])
    assert names(review.allowed) == ["get_weather"]
    assert review.events == []


async def test_allowed_tools_are_the_upstreams_own_objects_in_listing_order(tmp_path: Path) -> None:
    tools = [weather(_meta={"x": 1}), adder()]
    async with opened(tmp_path / "pins.db") as pins:
        review = await pins.review("wx", tools)
    assert review.allowed == tuple(tools)


async def test_a_changed_description_is_quarantined_as_changed_with_a_diff_showing_it(tmp_path: Path) -> None:
    pulled = weather("Returns the weather for a city. Now with a five-day forecast.")
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather()])
        review = await pins.review("wx", [pulled])
        diff = await pins.diff("wx", "get_weather")
    assert review.allowed == ()
    (held,) = review.quarantined
    assert (held.upstream, held.name, held.reason) == ("wx", "get_weather", QuarantineReason.CHANGED)
    assert (held.old_fingerprint, held.new_fingerprint) == (fingerprint(weather()), fingerprint(pulled))
    assert [(e["event"], e["reason"]) for e in review.events] == [("quarantined", "changed")]
    assert '-  "description": "Returns the weather for a city.",' in diff
    assert '+  "description": "Returns the weather for a city. Now with' in diff
    assert "city.{+ Now with a five-day forecast.+}" in diff


async def test_a_changed_parameter_description_is_quarantined(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather()])
        review = await pins.review("wx", [with_city_description("The city, e.g. Paris")])
        diff = await pins.diff("wx", "get_weather")
    assert [q.reason for q in review.quarantined] == [QuarantineReason.CHANGED]
    assert "$.inputSchema.properties.city.description" in diff


async def test_a_meta_or_icon_only_change_is_not_quarantined(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather()])
        review = await pins.review(
            "wx", [weather(_meta={"build": "2"}, icons=[{"src": "https://example.com/i.png"}])]
        )
    assert names(review.allowed) == ["get_weather"]
    assert review.events == []


async def test_a_quarantined_tool_stays_quarantined_without_repeating_its_event(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather()])
        first = await pins.review("wx", [weather("Changed.")])
        again = await pins.review("wx", [weather("Changed.")])
    assert len(first.events) == 1
    assert again.events == []
    assert [q.reason for q in again.quarantined] == [QuarantineReason.CHANGED]


async def test_a_tool_that_disappears_and_comes_back_unchanged_is_allowed(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather(), adder()])
        gone = await pins.review("wx", [adder()])
        back = await pins.review("wx", [weather(), adder()])
    assert names(gone.allowed) == ["add"]
    assert names(back.allowed) == ["get_weather", "add"]
    assert back.events == []


async def test_going_back_to_the_pinned_definition_ends_the_quarantine(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather()])
        await pins.review("wx", [weather("Changed.")])
        review = await pins.review("wx", [weather()])
        records = await pins.records()
    assert names(review.allowed) == ["get_weather"]
    assert [e["event"] for e in review.events] == ["restored"]
    assert records[0].pending is None


async def test_require_approval_quarantines_new_tools(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db", mode="require_approval") as pins:
        review = await pins.review("wx", [weather()])
        records = await pins.records()
    assert review.allowed == ()
    assert [(q.reason, q.old_fingerprint) for q in review.quarantined] == [(QuarantineReason.NEW, None)]
    assert [(e["event"], e["reason"]) for e in review.events] == [("quarantined", "new")]
    assert records[0].pin is None


async def test_require_approval_still_allows_tools_pinned_before(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("wx", [weather()])
    async with opened(tmp_path / "pins.db", mode="require_approval") as pins:
        review = await pins.review("wx", [weather(), adder()])
    assert names(review.allowed) == ["get_weather"]
    assert [q.name for q in review.quarantined] == ["add"]


async def test_pins_are_per_upstream(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        await pins.review("one", [weather()])
        review = await pins.review("two", [weather("A different weather tool.")])
    assert names(review.allowed) == ["get_weather"]
    assert [e["event"] for e in review.events] == ["pinned"]


async def test_accepting_in_process_pins_the_pending_definition(tmp_path: Path) -> None:
    clock = Clock()
    async with opened(tmp_path / "pins.db", clock) as pins:
        await pins.review("wx", [weather()])
        await pins.review("wx", [weather("Changed.")])
        clock.advance()
        pin = await pins.accept("wx", "get_weather", by="alice")
        review = await pins.review("wx", [weather("Changed.")])
    assert (pin.pinned_by, pin.pinned_at, pin.forced) == ("alice", clock.now, False)
    assert names(review.allowed) == ["get_weather"]


async def test_the_poisoning_scan_runs_off_the_event_loop_and_once_per_definition(tmp_path: Path) -> None:
    scanned_in: list[int] = []

    def scan(view: Mapping[str, Any]) -> list[Finding]:
        scanned_in.append(threading.get_ident())
        return scan_tool_definition(view)

    async with PinStore.open(PinningConfig(path=tmp_path / "pins.db"), scan=scan) as pins:
        first = await pins.review("wx", [weather(), adder(POISONED_DESCRIPTION)])
        again = await pins.review("wx", [weather(), adder(POISONED_DESCRIPTION)])
    assert names(first.allowed) == names(again.allowed) == ["get_weather"]
    assert [q.name for q in again.quarantined] == ["add"]
    assert len(scanned_in) == 2 and threading.get_ident() not in scanned_in
