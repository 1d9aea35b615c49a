"""Argument shape: the sorted key paths of a call's arguments with their value types.

Two calls have the same shape when they use the same keys with the same kinds of
values, whatever the values are: ``{"to": "a@x", "cc": ["b@y"]}`` has the shape
``cc[]:str,to:str``. Shapes feed the behavioural baseline ("has this agent ever called
this tool with these arguments?") and the session records. Walking is bounded in depth
and in the number of paths, so a hostile payload cannot make it expensive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from hashlib import blake2b
from typing import Any

MAX_DEPTH = 6
MAX_PATHS = 128


_KINDS: dict[type, str] = {str: "str", bool: "bool", int: "num", float: "num", type(None): "null"}


def _kind(value: Any) -> str:
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, Mapping):
        return "obj"
    if isinstance(value, Sequence):
        return "list"
    return type(value).__name__


def _walk(value: Any, prefix: str, depth: int, out: set[str]) -> None:
    if len(out) >= MAX_PATHS:
        return
    kind = type(value)
    if kind in _KINDS:
        out.add(f"{prefix or '$'}:{_KINDS[kind]}")
    elif kind is dict or isinstance(value, Mapping):
        if depth >= MAX_DEPTH or not value:
            out.add(f"{prefix}:obj")
            return
        for key, item in value.items():
            if len(out) >= MAX_PATHS:
                return
            _walk(item, f"{prefix}.{key}" if prefix else str(key), depth + 1, out)
    elif kind is list or kind is tuple:
        if depth >= MAX_DEPTH or not value:
            out.add(f"{prefix}[]:list")
            return
        for item in value[:16]:
            _walk(item, f"{prefix}[]", depth + 1, out)
    else:
        out.add(f"{prefix or '$'}:{_kind(value)}")


def shape_paths(arguments: Mapping[str, Any]) -> tuple[str, ...]:
    """The sorted ``path:type`` entries of ``arguments`` (list elements merge under ``[]``)."""
    out: set[str] = set()
    _walk(arguments, "", 0, out)
    return tuple(sorted(out))


def argument_shape(arguments: Mapping[str, Any]) -> str:
    """A short, stable signature of :func:`shape_paths` (16 hex digits; ``""`` for no arguments)."""
    if not arguments:
        return ""
    text = ",".join(shape_paths(arguments))
    return blake2b(text.encode(), digest_size=8).hexdigest()
