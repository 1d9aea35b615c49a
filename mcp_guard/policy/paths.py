"""Argument paths: ``args.a.b``, ``args.items[0].x``, ``args.items[*].x``, ``args.*``, ``args.**``.

A path compiles into a function from the call's arguments to the values it selects.
``*`` (or ``[*]``) selects every member of a mapping or list at that level; ``**``
selects the value itself and every value nested inside it, at any depth.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

_TOKEN = re.compile(r"\.(\*\*|\*|[^.\[\]]+)|\[(\*|-?\d+)\]")
StepKind = Literal["key", "index", "any", "deep"]
Resolver = Callable[[Any], list[Any]]
MAX_DEPTH = 64


@dataclass(frozen=True)
class Step:
    kind: StepKind
    key: str | int = ""


def parse_path(text: str) -> list[Step]:
    """Steps of an ``args...`` path.

    Raises:
        ValueError: ``text`` does not start with ``args`` or has a malformed segment.
    """
    if not text.startswith("args"):
        raise ValueError(f"argument path {text!r} must start with 'args'")
    rest = text[4:]
    steps: list[Step] = []
    pos = 0
    while pos < len(rest):
        m = _TOKEN.match(rest, pos)
        if m is None:
            raise ValueError(f"malformed argument path {text!r} at {rest[pos:]!r}")
        name, index = m.group(1), m.group(2)
        if name == "**":
            steps.append(Step("deep"))
        elif name == "*" or index == "*":
            steps.append(Step("any"))
        elif name is not None:
            steps.append(Step("key", name))
        else:
            steps.append(Step("index", int(index)))
        pos = m.end()
    if not steps:
        raise ValueError("argument path 'args' needs a field, '*' or '**' (e.g. args.amount)")
    return steps


def compile_path(steps: Sequence[Step]) -> Resolver:
    """A function returning every value ``steps`` select from the arguments mapping."""
    frozen = tuple(steps)

    def resolve(root: Any) -> list[Any]:
        current = [root]
        for step in frozen:
            found: list[Any] = []
            if step.kind in ("key", "index"):
                key = step.key
                for value in current:
                    child = _child(value, key)
                    if child is not _MISSING:
                        found.append(child)
            elif step.kind == "any":
                for value in current:
                    if isinstance(value, Mapping):
                        found.extend(value.values())
                    elif isinstance(value, list | tuple):
                        found.extend(value)
            else:
                for value in current:
                    _descendants(value, found, 0)
            if not found:
                return found
            current = found
        return current

    return resolve


class _Missing:
    pass


_MISSING = _Missing()


def _child(value: Any, key: str | int) -> Any:
    if isinstance(key, str):
        if isinstance(value, Mapping):
            return value.get(key, _MISSING)
        return _MISSING
    if isinstance(value, list | tuple) and -len(value) <= key < len(value):
        return value[key]
    return _MISSING


def _descendants(value: Any, out: list[Any], depth: int) -> None:
    out.append(value)
    if depth >= MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for member in value.values():
            _descendants(member, out, depth + 1)
    elif isinstance(value, list | tuple):
        for member in value:
            _descendants(member, out, depth + 1)


Getter = Callable[[Any], Any]
MISSING: Any = _MISSING


def compile_getter(steps: Sequence[Step]) -> Getter | None:
    """For a path without wildcards: a function returning the value or :data:`MISSING`."""
    if not all(s.kind in ("key", "index") for s in steps):
        return None
    keys = tuple(s.key for s in steps)
    if len(keys) == 1 and isinstance(keys[0], str):
        only = keys[0]
        return lambda root: root.get(only, _MISSING) if isinstance(root, Mapping) else _MISSING

    def get(root: Any) -> Any:
        value = root
        for key in keys:
            value = _child(value, key)
            if value is _MISSING:
                break
        return value

    return get
