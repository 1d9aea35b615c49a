"""YAML (and JSON) loading that remembers where every key came from.

Every configuration and policy error names ``file:line``; this module keeps the
line of each mapping key and sequence item so validation errors can point at them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mcp_guard.errors import ConfigError

PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class YamlDocument:
    """Plain Python data parsed from a file, plus the 1-based line of every path."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def where(self, path: Sequence[str | int]) -> str:
        return f"{self.file}:{self.line_of(path)}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader; duplicate keys are detected in :func:`_to_python`."""


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse ``text`` (YAML or JSON) into a :class:`YamlDocument`.

    Raises:
        ConfigError: the text is not well-formed, or repeats a key in one mapping.
    """
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{file}:{line}: invalid YAML: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}:1: invalid YAML: {exc}"]) from None
    doc = YamlDocument(file=file, data=None)
    if node is None:
        return doc
    problems: list[str] = []
    doc.data = _to_python(node, (), doc, problems)
    if problems:
        raise ConfigError(problems)
    return doc


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse a YAML or JSON file.

    Raises:
        ConfigError: the file cannot be read or parsed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}:0: cannot read file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}:0: file is not UTF-8: {exc.reason}"]) from None
    return parse_yaml(text, str(p))


def _to_python(node: yaml.Node, path: PathKey, doc: YamlDocument, problems: list[str]) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            child = (*path, str(key))
            if key in out:
                problems.append(f"{doc.file}:{key_node.start_mark.line + 1}: duplicate key '{key}'")
                continue
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, child, doc, problems)
            doc.lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), doc, problems) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = _UniqueKeyLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def validation_problems(exc: ValidationError, doc: YamlDocument, prefix: PathKey = ()) -> list[str]:
    """Turn a pydantic error into ``file:line: key: message`` lines."""
    problems = []
    for err in exc.errors():
        loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
        full = (*prefix, *loc)
        key = ".".join(str(part) for part in full) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(f"{doc.where(full)}: {key}: {msg}")
    return problems


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts the union member name (e.g. "StdioUpstream") into locations.
    return isinstance(part, str) and part[:1].isupper()


def validate_document(model: type[M], doc: YamlDocument, data: Any | None = None) -> M:
    """Validate ``data`` (default: the whole document) against ``model``.

    Raises:
        ConfigError: with one ``file:line: key: message`` per problem.
    """
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, doc)) from None
