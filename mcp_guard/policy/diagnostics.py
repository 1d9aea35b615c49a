"""Collects ``file:line: message`` problems so a load reports every mistake at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mcp_guard.config.yaml_source import YamlDocument


@dataclass
class Diagnostics:
    """Errors and warnings found while loading one policy folder."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, doc: YamlDocument, path: Sequence[str | int], message: str) -> None:
        self.errors.append(f"{doc.where(path)}: {_key(path)}{message}")

    def warn(self, doc: YamlDocument, path: Sequence[str | int], message: str) -> None:
        self.warnings.append(f"{doc.where(path)}: {_key(path)}{message}")


@dataclass
class Located:
    """A position inside a document: where to point when something is wrong."""

    doc: YamlDocument
    path: tuple[str | int, ...]
    diag: Diagnostics

    def at(self, *more: str | int) -> Located:
        return Located(self.doc, (*self.path, *more), self.diag)

    def error(self, message: str) -> None:
        self.diag.error(self.doc, self.path, message)

    def warn(self, message: str) -> None:
        self.diag.warn(self.doc, self.path, message)

    @property
    def line(self) -> int:
        return self.doc.line_of(self.path)


def _key(path: Sequence[str | int]) -> str:
    if not path:
        return ""
    return ".".join(str(p) for p in path) + ": "
