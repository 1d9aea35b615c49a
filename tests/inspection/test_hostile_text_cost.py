"""The shortcuts that keep hostile text (long unbroken tokens, high-entropy blobs) cheap give
the same answers as the plain definitions they replace. Their speed is measured by
``benchmarks/inspection_speed.py``, not here."""

from __future__ import annotations

import base64
import random

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
        b"short text with no anchor",
    ]


@pytest.mark.parametrize("seed", range(10))
def test_families_found_pass_by_pass_are_those_the_combined_automaton_finds(seed: int) -> None:
    for data in samples(random.Random(seed)):
        assert sorted(anchors._present(data)) == sorted(anchors._SET.Match(data) or ())
