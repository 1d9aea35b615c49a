"""Canonical JSON follows RFC 8785 (JCS)."""

from __future__ import annotations

import hashlib
import math

import pytest

from mcp_guard.audit import canonical_json, digest
from mcp_guard.audit.canonical import format_number


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
