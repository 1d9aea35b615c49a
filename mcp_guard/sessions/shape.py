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
_DIGESTS_LIMIT = 4096
_DIGESTS_TEXT_LIMIT = 512
_DIGESTS: dict[str, str] = {}
"""Shape text -> its digest (a pure function, so entries never go stale): calls mostly
reuse a few shapes. Bounded: texts up to 512 characters, cleared when full."""


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
            path = f"{prefix}.{key}" if prefix else str(key)
            scalar = _KINDS.get(type(item))
            if scalar is not None:  # what _walk would add, without a call per scalar value
                out.add(f"{path or '$'}:{scalar}")
            else:
                _walk(item, path, depth + 1, out)
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
    digest = _DIGESTS.get(text)
    if digest is None:
        digest = blake2b(text.encode(), digest_size=8).hexdigest()
        if len(text) <= _DIGESTS_TEXT_LIMIT:
            if len(_DIGESTS) >= _DIGESTS_LIMIT:
                _DIGESTS.clear()
            _DIGESTS[text] = digest
    return digest
