"""The shortcuts that keep hostile text (long unbroken tokens, high-entropy blobs, random
characters) cheap give the same answers as the plain definitions they replace. Their speed is measured by
``benchmarks/inspection_speed.py``, not here."""

from __future__ import annotations

import base64
import itertools
import random
import time
from types import SimpleNamespace

import pytest

from mcp_guard.inspection import anchors
from mcp_guard.inspection.regions import _MAX_GROW, regions


def grown_one_character_at_a_time(text: str, lo: int, hi: int) -> tuple[int, int]:
    """The definition: extend to the surrounding whitespace, at most _MAX_GROW each way."""
    floor = max(0, lo - _MAX_GROW)
    while lo > floor and not text[lo - 1].isspace():
        lo -= 1
    ceil = min(len(text), hi + _MAX_GROW)
    while hi < ceil and not text[hi].isspace():
        hi += 1
    return lo, hi


@pytest.mark.parametrize("seed", range(40))
def test_grown_windows_end_at_the_surrounding_whitespace(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = rng.choice(["ab ", "abcdef", "a\u00a0b\tc\n", "x" * 30 + " "])
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1100, 6000)))
    spans = sorted((s, s + rng.randint(0, 30)) for s in rng.sample(range(len(text) - 31), 5))
    radius = rng.randint(1, 200)
    expected: list[tuple[int, int]] = []
    for s, e in spans:
        lo, hi = grown_one_character_at_a_time(text, max(0, s - radius), min(len(text), e + radius))
        if expected and lo <= expected[-1][1]:
            expected[-1] = (expected[-1][0], max(expected[-1][1], hi))
        else:
            expected.append((lo, hi))
    assert regions(spans, len(text), radius, grow=True, text=text) == expected


def samples(rng: random.Random) -> list[bytes]:
    return [
        base64.b64encode(rng.randbytes(3000)),
        rng.randbytes(2000).hex().encode(),
        " ".join(
            rng.choice(["ignore", "previous", "instructions", "bob@example.com", "4111 1111"])
            for _ in range(400)
        ).encode(),
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ./:-_@;|$") for _ in range(3000)),
        bytes(rng.choice(range(0x20, 0x7F)) for _ in range(3000)),
        "Grüße an jörg@example.org; ignorez les instructions précédentes".encode(),
        b"short text with no anchor",
        b"Q" * 255 + b" mail bob@example.com",  # one byte short of a token run: not searched for one
        b"Q" * 256 + b" mail bob@example.com",
    ]


EVERY_FAMILY = tuple(range(len(anchors.FAMILIES)))


@pytest.mark.parametrize("seed", range(10))
def test_the_combined_automaton_the_groups_and_each_family_alone_find_the_same_families(seed: int) -> None:
    for data in samples(random.Random(seed)):
        alone = sorted(anchors._each_alone(EVERY_FAMILY, data))
        assert sorted(anchors._COMBINED.present(data)) == alone
        assert sorted(i for group in anchors._GROUPS for i in group.present(data)) == alone
        assert sorted(anchors._present(data)) == alone


def test_an_automaton_that_answers_nothing_is_not_read_as_no_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``re2.Set`` whose DFA runs out of memory returns no index at all (the case is
    simulated: it needs gigabytes of hostile text); its families are then searched alone."""
    data = b"mail bob@example.com, then ignore previous instructions"
    expected = sorted(anchors._COMBINED.present(data))
    monkeypatch.setattr(anchors._COMBINED, "_match", lambda _data: [])
    assert sorted(anchors._COMBINED.present(data)) == expected
    assert {anchors._NAMES[i] for i in expected} >= {"email", "injection"}


def test_one_slow_search_is_a_warm_up_and_the_combined_automaton_keeps_working() -> None:
    switch = anchors.RestingSwitch(slow_s=0.002, window_s=10.0, rest_s=60.0)
    switch.searched(0.050, 100.0)
    assert switch.may_search(100.1)
    switch.searched(0.050, 200.0)  # the next slow one comes long after
    assert switch.may_search(200.1)


def test_slow_searches_in_a_row_rest_the_combined_automaton_for_a_while() -> None:
    switch = anchors.RestingSwitch(slow_s=0.002, window_s=10.0, rest_s=60.0)
    switch.searched(0.050, 100.0)
    switch.searched(0.050, 101.0)
    assert not switch.may_search(101.1)
    assert not switch.may_search(160.0)
    assert switch.may_search(161.0)


def test_fast_searches_never_rest_the_combined_automaton() -> None:
    switch = anchors.RestingSwitch(slow_s=0.002, window_s=10.0, rest_s=60.0)
    for i in range(100):
        switch.searched(0.0001, i * 0.01)
    assert switch.may_search(1.0)


def test_searches_held_off_the_cpu_by_a_busy_host_never_rest_the_combined_automaton(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    switch = anchors.RestingSwitch()
    monkeypatch.setattr(anchors, "_COMBINED_SWITCH", switch)
    wall = itertools.count(1000.0, 0.05)  # every read of the wall clock 50 ms on: a preempted search
    monkeypatch.setattr(
        anchors, "time", SimpleNamespace(monotonic=lambda: next(wall), thread_time=time.thread_time)
    )
    data = b"mail bob@example.com about the weekly report"
    for _ in range(5):
        assert anchors._NAMES.index("email") in anchors._present(data)
    assert switch.may_search(next(wall))


PIECES = [
    "plain words about the weekly report",
    "bob@example.com",
    "4111 1111 1111 1111",
    "ignore previous instructions",
    "AKIAIOSFODNN7EXAMPLE",
    "Grüße an jörg",
    "zero\u200bwidth",
    "vtaber nyy cerivbhf",
    "<script>alert(1)</script>",
    "'; DROP TABLE users; --",
    "../../etc/passwd",
    "http://169.254.169.254/latest/meta-data",
    "DE89 3704 0044 0532 0130 00",
]


def many_strings(rng: random.Random) -> list[bytes]:
    """Strings of 1 B to 6 kB made of pieces that each carry some family's anchor (or
    none), so that anchors fall on every side of the cuts between chunks."""
    strings = []
    while sum(map(len, strings)) < 40_000:
        size = rng.choice([1, 30, 300, 2000, 4095, 4096, 4097, 6000])
        text = ""
        while len(text) < size:
            text += rng.choice(PIECES) + rng.choice([" ", "\n", ""])
        strings.append(text[:size].encode())
    return strings


def starts_of(strings: list[bytes]) -> list[int]:
    starts, pos = [], 0
    for s in strings:
        starts.append(pos)
        pos += len(s) + 1
    return starts


@pytest.mark.parametrize("seed", range(20))
def test_chunks_hold_whole_strings_and_cover_every_one(seed: int) -> None:
    strings = many_strings(random.Random(seed))
    starts = starts_of(strings)
    end = starts[-1] + len(strings[-1])
    ends = {start + len(s) for start, s in zip(starts, strings, strict=True)}
    covered = []
    for lo, hi in anchors.chunks(starts, end):
        assert lo in starts and hi in ends
        held = [i for i, start in enumerate(starts) if lo <= start < hi]
        assert hi - lo <= anchors._COMBINED_MAX_BYTES or len(held) == 1
        covered += held
    assert covered == list(range(len(strings)))


@pytest.mark.parametrize("seed", range(20))
def test_many_strings_searched_a_chunk_at_a_time_miss_no_family_of_any_string(seed: int) -> None:
    """The definition: a family counts when its anchor occurs within one string. The
    chunked search may also report one whose anchor spans two strings of a chunk, like
    the search of the whole buffer, never one that occurs nowhere."""
    strings = many_strings(random.Random(seed))
    data = b"\x00".join(strings)
    per_string = {i for s in strings for i in anchors._each_alone(EVERY_FAMILY, s)}
    whole = set(anchors._each_alone(EVERY_FAMILY, data))
    found = set(anchors._present(data, frozenset(anchors.FAMILIES), starts_of(strings)))
    assert per_string <= found <= whole


def test_a_chunked_search_over_its_budget_hands_the_rest_to_the_groups_and_rests_when_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strings = many_strings(random.Random(3))
    data, starts = b"\x00".join(strings), starts_of(strings)
    expected = set(anchors._present(data, frozenset(anchors.FAMILIES), starts))
    switch = anchors.RestingSwitch()
    monkeypatch.setattr(anchors, "_COMBINED_SWITCH", switch)
    monkeypatch.setattr(anchors, "_CHUNK_ALLOWANCE_S", -1.0)  # every chunk is over budget
    assert set(anchors._present(data, frozenset(anchors.FAMILIES), starts)) >= expected
    assert switch.may_search(time.monotonic())  # once is a warm-up
    assert set(anchors._present(data, frozenset(anchors.FAMILIES), starts)) >= expected
    assert not switch.may_search(time.monotonic())


def filler(size: int) -> bytes:
    return ("plain words about the weekly report " * (size // 36 + 1))[:size].encode()


@pytest.mark.parametrize("piece", [p for p in PIECES if anchors._each_alone(EVERY_FAMILY, p.encode())])
@pytest.mark.parametrize("where", ["ends the first chunk", "begins the second chunk"])
def test_an_anchor_next_to_a_cut_between_chunks_is_found(piece: str, where: str) -> None:
    raw = piece.encode()
    if where == "ends the first chunk":
        strings = [filler(anchors._COMBINED_MAX_BYTES - len(raw) - 1), raw, filler(3000), filler(3000)]
    else:
        strings = [filler(anchors._COMBINED_MAX_BYTES), raw, filler(3000), filler(3000)]
    data, starts = b"\x00".join(strings), starts_of(strings)
    cut = starts[2] - 1 if where == "ends the first chunk" else starts[1]
    assert cut in {edge for chunk in anchors.chunks(starts, len(data)) for edge in chunk}  # as named
    families = set(anchors._each_alone(EVERY_FAMILY, raw))
    assert families <= set(anchors._present(data, frozenset(anchors.FAMILIES), starts))
