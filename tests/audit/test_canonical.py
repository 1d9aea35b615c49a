"""Canonical JSON follows RFC 8785 (JCS), on the C encoder's fast path as on the RFC encoder."""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest

from mcp_guard.audit import canonical_json, digest
from mcp_guard.audit.canonical import _fast_text, format_number, reference_json
from mcp_guard.decision import Decision


def test_objects_are_sorted_without_whitespace() -> None:
    assert (
        canonical_json({"b": [1, 2, {"d": None, "c": True}], "a": "x"})
        == '{"a":"x","b":[1,2,{"c":true,"d":null}]}'
    )


def test_rfc8785_sample_from_section_3_2_2() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) in UTF-16, which sorts before U+FB01.
    assert canonical_json({"\ufb01": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb01":1}'


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-1.5e-9, "-1.5e-9"),
        (0.1, "0.1"),
    ],
)
def test_numbers_print_like_ecmascript(number: float, text: str) -> None:
    assert format_number(number) == text


def test_large_integers_keep_their_exact_digits() -> None:
    assert canonical_json({"id": 2**64 + 1}) == '{"id":18446744073709551617}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, "\ud800", {1: "x"}, object()])
def test_values_that_are_not_json_are_rejected(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        canonical_json({"v": bad} if not isinstance(bad, dict) else bad)


def test_digest_is_sha256_of_the_canonical_bytes() -> None:
    assert digest({"b": 1, "a": 2}) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
    assert digest({"a": 2, "b": 1.0}) == digest({"b": 1, "a": 2})


def _random_float(rng: random.Random) -> float:
    """Any finite double: random bits, integral values, and round decimals of every size."""
    pick = rng.random()
    if pick < 0.4:
        while not math.isfinite(x := struct.unpack("<d", rng.randbytes(8))[0]):
            pass
        return x
    if pick < 0.7:
        return float(rng.randint(-(10**22), 10**22)) / 10 ** rng.randint(0, 25)
    return rng.choice([0.0, -0.0, 1.0, -1.0, 0.5, 1e16, 1e21, 1e-6, 1e-7, 123456789.0, 2.0**53 + 2])


def _random_text(rng: random.Random) -> str:
    alphabet = 'aZ09 .,:-e+"\\/\n\t\x00\x1f\x7f\u00e9\u2028\ud7ff\ue000\ufb01\uffff\U0001f600\U0010ffff'
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([rng.randint(-1000, 1000), rng.randint(-(2**70), 2**70)])
    if kind in (2, 3):
        return _random_float(rng)
    if kind in (4, 5):
        return _random_text(rng)
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == 7:
        return tuple(_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return {_random_text(rng): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _outcome(encode: Callable[[Any], str], value: Any) -> str:
    try:
        return encode(value)
    except (TypeError, ValueError) as exc:
        return f"raises {type(exc).__name__}"


def test_the_c_encoders_fast_path_gives_exactly_the_rfc_encoders_text() -> None:
    rng = random.Random(8785)
    fast_path_taken = 0
    for _ in range(20_000):
        value = _random_json(rng)
        expected = _outcome(lambda v: reference_json(v).encode("utf-8").decode("utf-8"), value)
        assert _outcome(canonical_json, value) == expected, value
        fast_path_taken += _fast_text(value) is not None
    assert fast_path_taken > 5_000  # the fast path is really exercised, not always refused


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key"},
        {None: "null key"},
        {"a": {2.5: "float key"}},
        [{True: "bool key"}],
        {"nan": math.nan},
        {"inf": [-math.inf]},
        OrderedDict([(1, "a mapping the C encoder would take")]),
        {"enum": Decision.ALLOW},
    ],
)
def test_values_the_c_encoder_would_take_differently_go_to_the_rfc_encoder(value: Any) -> None:
    assert _fast_text(value) is None
    assert _outcome(canonical_json, value) == _outcome(reference_json, value)
