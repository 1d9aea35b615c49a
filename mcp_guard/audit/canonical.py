"""Canonical JSON: RFC 8785 (JSON Canonicalization Scheme), implemented here.

The encoding every audit hash is computed over (docs/audit.md, "Canonical encoding"):

* objects: members sorted by key, comparing keys as UTF-16 code units; no
  whitespace anywhere (``,`` and ``:`` separators);
* strings: UTF-8, only ``"``, ``\\`` and U+0000..U+001F escaped (``\\b \\t \\n \\f \\r``
  short forms, otherwise ``\\u00xx`` lower-case hex); everything else literal;
  lone surrogates are rejected;
* numbers: IEEE-754 doubles printed as ECMAScript ``Number.prototype.toString``
  does (shortest round-trip digits; ``1.0`` -> ``1``, ``1e-7`` -> ``1e-7``,
  ``1e21`` -> ``1e+21``); NaN and infinities are rejected; ``-0`` -> ``0``;
* integers with ``|n| <= 2**53`` print as plain decimals (identical to JCS);
  larger integers print as their exact decimal digits -- a deliberate deviation
  from RFC 8785 (which would round them through a double) so that evidence is
  never silently altered;
* ``true``, ``false``, ``null``; tuples encode as arrays.

Most values are encoded by orjson (``OPT_SORT_KEYS``; compact, UTF-8, escaping exactly
the characters RFC 8785 escapes, with its short forms): for plain JSON data its text is
the canonical one except for some floats and the order of some keys. :func:`_fast_bytes`
takes it only where it cannot differ: every container a ``dict`` with ``str`` keys, a
``list`` or a ``tuple``; every scalar of exactly ``str``, ``int``, ``float``, ``bool`` or
``None`` (subclasses such as enums are left to the RFC encoder); integral floats below
2**53 handed over as ints; every other float between 1e-4 and 2**53, where orjson and
ECMAScript both print the shortest round-trip digits in fixed notation; no key with a
character from U+E000 up (where code-point and UTF-16 order part ways). What orjson
refuses (integers beyond 64 bits, lone surrogates, nesting deeper than 255) and anything
else goes to the encoder below, written to the RFC. The two are checked against each
other on random values in ``tests/audit/test_canonical.py``.
"""

from __future__ import annotations

import hashlib
import json.encoder
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # C-accelerated
_from_e000 = re.compile("[\ue000-\U0010ffff]").search
_AWKWARD = object()
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})
"""Scalars orjson prints exactly as RFC 8785 does (not their subclasses, e.g. enums)."""
_EXACT_INTEGERS = 2.0**53
_FIXED_NOTATION_FROM = 1e-4  # smaller floats go to the RFC encoder (JCS prints an exponent from 1e-7 down)


def canonical_json(value: Any) -> str:
    """The RFC 8785 canonical JSON text of ``value`` (see the module docstring).

    Raises:
        TypeError: ``value`` holds something that is not JSON (or a non-string key).
        ValueError: ``value`` holds NaN, an infinity, or a lone surrogate.
    """
    return canonical_bytes(value).decode("utf-8")


def canonical_bytes(value: Any) -> bytes:
    """UTF-8 bytes of :func:`canonical_json` (orjson's own bytes where it takes ``value``).

    Raises:
        TypeError, ValueError: as :func:`canonical_json`.
    """
    encoded = _fast_bytes(value)
    # Encoding the reference text rejects lone surrogates (UnicodeEncodeError is a ValueError).
    return encoded if encoded is not None else reference_json(value).encode("utf-8")


def reference_json(value: Any) -> str:
    """The canonical JSON text of ``value`` from the encoder written to RFC 8785, without
    orjson's fast path and without the lone-surrogate check (:func:`canonical_json` does both).

    Raises:
        TypeError, ValueError: as :func:`canonical_json`.
    """
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _fast_bytes(value: Any) -> bytes | None:
    """orjson's UTF-8 encoding of ``value`` where it is the canonical one, else None (see
    the module docstring)."""
    prepared = _for_orjson(value)
    if prepared is _AWKWARD:
        return None
    try:
        return orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate, deep nesting
        return None


def _for_orjson(value: Any) -> Any:
    """``value`` with integral floats below 2**53 as ints (JCS prints ``1.0`` as ``1``, orjson
    as ``1.0``), copying only the containers that change; :data:`_AWKWARD` if orjson's text
    of it could still differ from the canonical one."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        if value.is_integer():
            return int(value) if -_EXACT_INTEGERS < value < _EXACT_INTEGERS else _AWKWARD
        return value if _FIXED_NOTATION_FROM <= abs(value) < _EXACT_INTEGERS else _AWKWARD
    if kind is dict:
        return _prepared_object(value)
    if kind is list or kind is tuple:
        return _prepared_array(value)
    return _AWKWARD


def _prepared_object(value: dict[Any, Any]) -> Any:
    """:func:`_for_orjson` of a ``dict``: every key a ``str`` below U+E000, every item prepared."""
    for key in value:
        if type(key) is not str or (not key.isascii() and _from_e000(key)):
            return _AWKWARD
    return _with_prepared_items(value, value.items(), dict)


def _prepared_array(value: list[Any] | tuple[Any, ...]) -> Any:
    """:func:`_for_orjson` of a ``list`` or ``tuple`` (a changed one is copied to a list)."""
    return _with_prepared_items(value, enumerate(value), list)


def _with_prepared_items(value: Any, slots: Iterable[tuple[Any, Any]], copy: Callable[[Any], Any]) -> Any:
    """``value`` with each item in ``slots`` (key or index, item) prepared by
    :func:`_for_orjson` (the plain scalars, most items of a record, without a call),
    ``copy(value)`` taken at the first item that changes."""
    changed = None
    for slot, item in slots:
        if type(item) in _PLAIN:
            continue
        prepared = _for_orjson(item)
        if prepared is not item:
            if prepared is _AWKWARD:
                return _AWKWARD
            if changed is None:
                changed = copy(value)
            changed[slot] = prepared
    return value if changed is None else changed


def digest(value: Any) -> str:
    """SHA-256 (lower-case hex) of the canonical JSON of ``value``, e.g. for argument digests.

    Raises:
        TypeError, ValueError: as :func:`canonical_json`.
    """
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def format_number(x: float) -> str:
    """``x`` as ECMAScript's ``Number.prototype.toString`` prints it (RFC 8785 §3.2.2.3).

    Raises:
        ValueError: ``x`` is NaN or infinite.
    """
    if not math.isfinite(x):
        raise ValueError(f"JSON cannot represent {x!r}")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    text = repr(abs(x))  # shortest round-trip digits, as ECMAScript requires
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    stripped = digits.rstrip("0")
    k = len(stripped)
    n = k + exponent - len(frac_part) + (len(digits) - k)  # value = stripped * 10**(n - k)
    if k <= n <= 21:
        return sign + stripped + "0" * (n - k)
    if 0 < n <= 21:
        return sign + stripped[:n] + "." + stripped[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + stripped
    e = n - 1
    exp = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + stripped + "e" + exp
    return sign + stripped[0] + "." + stripped[1:] + "e" + exp


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(int(value)))  # exact digits, also beyond 2**53 (see module docstring)
    elif isinstance(value, float):
        out.append(format_number(value))
    elif isinstance(value, Mapping):
        _encode_object(value, out)
    elif isinstance(value, list | tuple):
        out.append("[")
        first = True
        for item in value:
            if not first:
                out.append(",")
            first = False
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _encode_object(value: Mapping[Any, Any], out: list[str]) -> None:
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
    keys = sorted(value)
    if any(k and max(k) > "\ud7ff" for k in keys):  # only then can code-point order differ from UTF-16
        keys.sort(key=_utf16_key)
    out.append("{")
    first = True
    for key in keys:
        if not first:
            out.append(",")
        first = False
        out.append(_encode_str(key))
        out.append(":")
        _encode(value[key], out)
    out.append("}")
