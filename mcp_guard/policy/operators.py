"""Comparison operators: an operator mapping compiled into one predicate on a value.

``{gt: 1000, lt: 5000}`` becomes ``lambda v: gt(v) and lt(v)``. Operands are checked
and regexes compiled here, at load time, so evaluation never fails on a bad operand.
Regexes are RE2 (linear time in the length of the text, as OPA's ``regex.match``): an
agent controls the arguments they are matched against, so a pattern that backtracks
must not be able to stall the gateway.
See docs/policies.md ("Operators") for the exact semantics of each operator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from mcp_guard.policy.diagnostics import Located

Pred = Callable[[Any], bool]

NUMERIC_OPS = ("gt", "gte", "lt", "lte")
OPERATORS = frozenset(
    {
        "eq",
        "ne",
        *NUMERIC_OPS,
        "in",
        "not_in",
        "contains",
        "not_contains",
        "regex",
        "glob",
        "starts_with",
        "ends_with",
        "exists",
        "min_length",
        "max_length",
        "length",
    }
)
_COLLECTIONS = (list, tuple, set, frozenset)
_SIZED = (str, Mapping, *_COLLECTIONS)


@dataclass(frozen=True)
class ValueTest:
    """A compiled operator mapping: ``pred`` on a present value, and the ``exists`` wish."""

    pred: Pred | None
    exists: bool | None


def to_number(value: Any) -> float | None:
    """``value`` as a finite number: ints, floats and numeric strings; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


class UndecidableValue(ValueError):
    """A value no comparison can decide, so the call is blocked (fail closed) rather than
    let through by a comparison that is simply false."""


def comparable_number(value: Any) -> float | None:
    """``value`` as a number for ``gt``/``gte``/``lt``/``lte``; ``None`` for non-numbers.

    Raises:
        UndecidableValue: ``value`` is a string that reads as NaN or an infinity
            (``"NaN"``, ``"Infinity"``, ``"1e999"``). Upstreams such as pydantic read it as
            that number, which no threshold bounds: treating it as "not a number" would
            let an ``amount: "Infinity"`` past an ``amount: {gt: 1000}`` rule.
    """
    number = to_number(value)
    if number is None and isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        raise UndecidableValue(f"{value!r} reads as {parsed}, not a finite number")
    return number


def values_equal(actual: Any, expected: Any) -> bool:
    """Equality that never confuses ``true`` with ``1`` and reads numeric strings as numbers."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, int | float) or isinstance(expected, int | float):
        a, e = to_number(actual), to_number(expected)
        return a is not None and a == e
    if isinstance(actual, set | frozenset) and isinstance(expected, list):
        return actual == set(expected)
    return bool(actual == expected)


def compile_test(spec: Any, loc: Located) -> ValueTest | None:
    """Compile ``spec`` (an operator mapping, or a scalar/list shorthand for eq/in).

    Returns ``None`` (after recording errors at ``loc``) when ``spec`` is invalid.
    """
    if not isinstance(spec, Mapping):
        spec = {"in": spec} if isinstance(spec, list) else {"eq": spec}
    if not spec:
        loc.error("empty operator mapping")
        return None
    preds: list[Pred] = []
    exists: bool | None = None
    ok = True
    for op, operand in spec.items():
        at = loc.at(str(op))
        if op == "exists":
            if not isinstance(operand, bool):
                at.error(f"'exists' takes true or false, not {operand!r}")
                ok = False
            else:
                exists = operand
            continue
        if op not in OPERATORS:
            at.error(f"unknown operator '{op}' (expected one of {', '.join(sorted(OPERATORS))})")
            ok = False
            continue
        pred = _compile_one(str(op), operand, at)
        if pred is None:
            ok = False
        else:
            preds.append(pred)
    if not ok:
        return None
    if exists is False and preds:
        loc.error("'exists: false' cannot be combined with other operators")
        return None
    return ValueTest(_all(preds) if preds else None, exists)


def _all(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda v: p(v) and q(v)
    return lambda v: all(p(v) for p in preds)


def _compile_one(op: str, operand: Any, at: Located) -> Pred | None:
    if op in NUMERIC_OPS:
        return _numeric(op, operand, at)
    if op in ("eq", "ne"):
        if isinstance(operand, Mapping):
            at.error(f"'{op}' takes a scalar or a list, not a mapping")
            return None
        if op == "eq":
            return lambda v: values_equal(v, operand)
        return lambda v: not values_equal(v, operand)
    if op in ("in", "not_in"):
        return _membership(op, operand, at)
    if op in ("contains", "not_contains"):
        return _contains(op, operand, at)
    if op in ("regex", "glob", "starts_with", "ends_with"):
        return _string(op, operand, at)
    return _length(op, operand, at)


def _numeric(op: str, operand: Any, at: Located) -> Pred | None:
    n = to_number(operand) if not isinstance(operand, str) else None
    if n is None:
        at.error(f"'{op}' takes a number, not {operand!r}")
        return None
    if op == "gt":
        return lambda v: (x := comparable_number(v)) is not None and x > n
    if op == "gte":
        return lambda v: (x := comparable_number(v)) is not None and x >= n
    if op == "lt":
        return lambda v: (x := comparable_number(v)) is not None and x < n
    return lambda v: (x := comparable_number(v)) is not None and x <= n


def _membership(op: str, operand: Any, at: Located) -> Pred | None:
    if not isinstance(operand, list):
        at.error(f"'{op}' takes a list, not {operand!r}")
        return None
    items = list(operand)
    hashable = {x for x in items if isinstance(x, str)}
    only_str = len(hashable) == len(items)

    def member(v: Any) -> bool:
        # The set lookup is only a shortcut for string values: a number must still equal
        # a numeric string item (1001 is in ["1001"]), as it does for ``eq``.
        if only_str and isinstance(v, str):
            return v in hashable
        return any(values_equal(v, x) for x in items)

    def any_member(v: Any) -> bool:
        if isinstance(v, _COLLECTIONS):
            return any(member(x) for x in v)
        return member(v)

    if op == "in":
        return any_member
    return lambda v: not any_member(v)


def _contains(op: str, operand: Any, at: Located) -> Pred | None:
    if isinstance(operand, Mapping | list):
        at.error(f"'{op}' takes a scalar, not {operand!r}")
        return None

    def contains(v: Any) -> bool:
        if isinstance(v, str):
            return isinstance(operand, str) and operand in v
        if isinstance(v, Mapping):
            return operand in v
        if isinstance(v, _COLLECTIONS):
            return any(values_equal(x, operand) for x in v)
        return False

    if op == "contains":
        return contains
    return lambda v: isinstance(v, _SIZED) and not contains(v)


def _string(op: str, operand: Any, at: Located) -> Pred | None:
    if not isinstance(operand, str):
        at.error(f"'{op}' takes a string, not {operand!r}")
        return None
    test: Callable[[str], bool]
    if op == "regex":
        from mcp_guard.re2 import OPTIONS, re2

        try:
            search = re2.compile(operand, OPTIONS).search
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if isinstance(exc.args[0], bytes) else exc
            hint = "policy regexes are RE2: no backreferences or lookaround"
            at.error(f"invalid regex {operand!r}: {reason} ({hint})")
            return None
        test = lambda s: search(s) is not None  # noqa: E731
    elif op == "glob":
        test = lambda s: fnmatchcase(s, operand)  # noqa: E731
    elif op == "starts_with":
        test = lambda s: s.startswith(operand)  # noqa: E731
    else:
        test = lambda s: s.endswith(operand)  # noqa: E731

    def pred(v: Any) -> bool:
        if isinstance(v, str):
            return test(v)
        if isinstance(v, _COLLECTIONS):
            return any(isinstance(x, str) and test(x) for x in v)
        return False

    return pred


def _length(op: str, operand: Any, at: Located) -> Pred | None:
    inner: Pred | None
    if op == "length":
        if not isinstance(operand, Mapping) or not set(operand) <= {"eq", "ne", *NUMERIC_OPS}:
            at.error("'length' takes a mapping of eq, ne, gt, gte, lt, lte")
            return None
        vt = compile_test(operand, at)
        if vt is None or vt.pred is None:
            return None
        inner = vt.pred
    else:
        if isinstance(operand, bool) or not isinstance(operand, int) or operand < 0:
            at.error(f"'{op}' takes a non-negative integer, not {operand!r}")
            return None
        limit = operand
        inner = (lambda n: n >= limit) if op == "min_length" else (lambda n: n <= limit)
    check = inner

    def pred(v: Any) -> bool:
        if isinstance(v, _SIZED):
            return check(len(v))
        return False

    return pred
