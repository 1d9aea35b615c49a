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
"""

from __future__ import annotations

import hashlib
import json.encoder
import math
from collections.abc import Callable, Mapping
from typing import Any

_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # C-accelerated


def canonical_json(value: Any) -> str:
    """The RFC 8785 canonical JSON text of ``value`` (see the module docstring).

    Raises:
        TypeError: ``value`` holds something that is not JSON (or a non-string key).
        ValueError: ``value`` holds NaN, an infinity, or a lone surrogate.
    """
    parts: list[str] = []
    _encode(value, parts)
    text = "".join(parts)
    text.encode("utf-8")  # rejects lone surrogates (UnicodeEncodeError is a ValueError)
    return text


def canonical_bytes(value: Any) -> bytes:
    """UTF-8 bytes of :func:`canonical_json`.

    Raises:
        TypeError, ValueError: as :func:`canonical_json`.
    """
    return canonical_json(value).encode("utf-8")


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
