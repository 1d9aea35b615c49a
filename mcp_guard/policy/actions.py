"""Action classes (read, write, delete, execute, external, privileged) for tools.

Configuration (``actions:`` globs in policy files) decides first: every glob that
matches the tool name contributes its classes. Only when no glob matches are the MCP
tool annotations consulted; they are untrusted hints and never override configuration.
Annotations follow the MCP defaults (``destructiveHint`` and ``openWorldHint`` default
to true unless ``readOnlyHint`` is true), so an unannotated tool counts as
``write, delete, external`` -- the cautious reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any


class ActionClassifier:
    """Classify namespaced tool names into action classes."""

    def __init__(self, globs: Iterable[tuple[str, frozenset[str]]] = ()) -> None:
        self._globs = tuple(globs)
        self._cache: dict[str, frozenset[str] | None] = {}

    @property
    def globs(self) -> tuple[tuple[str, frozenset[str]], ...]:
        return self._globs

    def configured(self, tool_name: str) -> frozenset[str] | None:
        """The classes configuration gives ``tool_name``, or ``None`` if no glob matches."""
        if tool_name in self._cache:
            return self._cache[tool_name]
        hits = [classes for glob, classes in self._globs if fnmatchcase(tool_name, glob)]
        found = frozenset().union(*hits) if hits else None
        if len(self._cache) < 4096:
            self._cache[tool_name] = found
        return found

    def classify(self, tool_name: str, annotations: Mapping[str, Any] | Any = None) -> frozenset[str]:
        """Action classes of ``tool_name`` (configuration first, then annotation hints)."""
        found = self.configured(tool_name)
        if found is not None:
            return found
        return from_annotations(annotations)


def from_annotations(annotations: Mapping[str, Any] | Any) -> frozenset[str]:
    """Classes implied by MCP tool annotations (a mapping or an object with attributes)."""
    read_only = _hint(annotations, "readOnlyHint", "read_only_hint", default=False)
    destructive = _hint(annotations, "destructiveHint", "destructive_hint", default=True)
    open_world = _hint(annotations, "openWorldHint", "open_world_hint", default=True)
    classes = {"read"} if read_only else ({"write", "delete"} if destructive else {"write"})
    if open_world:
        classes.add("external")
    return frozenset(classes)


def _hint(annotations: Mapping[str, Any] | Any, camel: str, snake: str, *, default: bool) -> bool:
    if annotations is None:
        return default
    if isinstance(annotations, Mapping):
        value = annotations.get(camel, annotations.get(snake))
    else:
        value = getattr(annotations, snake, getattr(annotations, camel, None))
    return value if isinstance(value, bool) else default
