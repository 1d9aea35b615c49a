"""Canonical JSON follows RFC 8785 (JCS), on orjson's fast path as on the RFC encoder."""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest

from mcp_guard.audit import canonical_bytes, canonical_json, digest
from mcp_guard.audit.canonical import _fast_bytes, format_number, reference_json
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
    alphabet = (
        'aZ09 .,:-e+"\\/\n\t\r\b\f\x00\x01\x0b\x1e\x1f\x7f\x80\x85\u00e9'
        "\u2028\u2029\ud7ff\ue000\ufb01\ufeff\uffff\U0001f600\U0010ffff"
    )
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
    return text + "\udc00" if rng.random() < 0.002 else text  # a lone surrogate, now and then


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        edges = [2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, -(2**64)]
        return rng.choice([rng.randint(-1000, 1000), rng.randint(-(2**70), 2**70), rng.choice(edges)])
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


def test_the_fast_path_gives_exactly_the_rfc_encoders_text() -> None:
    rng = random.Random(8785)
    fast_path_taken = 0
    for _ in range(20_000):
        value = _random_json(rng)
        expected = _outcome(lambda v: reference_json(v).encode("utf-8").decode("utf-8"), value)
        assert _outcome(canonical_json, value) == expected, value
        assert _outcome(lambda v: canonical_bytes(v).decode("utf-8"), value) == expected, value
        fast_path_taken += _fast_bytes(value) is not None
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
        OrderedDict([(1, "a mapping orjson would take")]),
        {"enum": Decision.ALLOW},
        {"big": 2**64},
        [-(2**63) - 1],
        {"lone surrogate": "a\ud800"},
        {"\udfff": "lone surrogate key"},
    ],
)
def test_values_orjson_would_take_differently_or_refuses_go_to_the_rfc_encoder(value: Any) -> None:
    assert _fast_bytes(value) is None
    expected = _outcome(lambda v: reference_json(v).encode("utf-8").decode("utf-8"), value)
    assert _outcome(canonical_json, value) == expected


@pytest.mark.parametrize("depth", [1, 200, 254, 255, 256, 280])
@pytest.mark.parametrize("container", ["list", "object"])
def test_deep_nesting_gives_the_rfc_encoders_text(depth: int, container: str) -> None:
    value: Any = 1.0
    for _ in range(depth):
        value = [value] if container == "list" else {"k": value}
    assert canonical_json(value) == reference_json(value)
    assert canonical_bytes(value) == reference_json(value).encode("utf-8")


@pytest.mark.parametrize("encode", [canonical_json, canonical_bytes, digest])
@pytest.mark.parametrize("value", [{"v": "a\ud800b"}, {"\udc00": 1}, ["\ud800", 2**64]])
def test_lone_surrogates_raise_value_error_as_documented(encode: Callable[[Any], Any], value: Any) -> None:
    with pytest.raises(ValueError, match="surrogate"):  # orjson's own error would be a TypeError
        encode(value)
