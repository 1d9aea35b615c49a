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
from yaml.constructor import SafeConstructor

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


MAX_ALIAS_VALUES = 100_000
"""How many values aliases may repeat in one document, nested aliases included.

An alias (``*name``) stands for a copy of its anchored value; a few nested aliases can
stand for billions of values ("billion laughs"). Past this bound the file is refused.
"""

MAX_DEPTH = 100
"""How deeply mappings and sequences may nest."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


def dotted(path: Sequence[str | int]) -> str:
    """``path`` as it is shown in messages: ``upstreams.bank.args.0``."""
    return ".".join(str(part) for part in path) or "<root>"


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse ``text`` (YAML or JSON) into a :class:`YamlDocument`.

    Mapping keys must be strings. ``<<`` merge keys are applied (the mapping's own keys
    win over merged ones, and earlier merged mappings over later ones). An alias may
    not refer to a value that contains it, and aliases may repeat at most
    :data:`MAX_ALIAS_VALUES` values in all.

    Raises:
        ConfigError: the text is not well-formed, repeats a key in one mapping, or
            breaks one of the rules above.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{file}:{line}: invalid YAML: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}:1: invalid YAML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{file}:1: invalid YAML: nested more than {MAX_DEPTH} levels deep"]) from None
    doc = YamlDocument(file=file, data=None)
    if node is None:
        return doc
    converter = _Converter(doc)
    try:
        doc.data = converter.value(node, (), node.start_mark.line + 1)
    except _Refused as exc:
        raise ConfigError([str(exc)]) from None
    if converter.problems:
        raise ConfigError(list(dict.fromkeys(converter.problems)))
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


class _Refused(Exception):
    """The document cannot be converted any further; the message is the one problem."""


_Pair = tuple[str, yaml.Node, yaml.Node]
"""A mapping entry: the key, its node, and the value's node."""


@dataclass
class _Converter:
    """Turns a composed YAML node graph into plain data, recording lines as it goes."""

    doc: YamlDocument
    problems: list[str] = field(default_factory=list)
    constructor: SafeConstructor = field(default_factory=SafeConstructor)
    seen: set[yaml.Node] = field(default_factory=set)
    """Every node converted at least once; converting one again is an alias repeating it."""
    in_progress: set[yaml.Node] = field(default_factory=set)
    """The collections being converted; an alias to one of them would be recursive."""
    repeated: int = 0

    def problem(self, line: int, path: PathKey, message: str) -> None:
        self.problems.append(f"{self.doc.file}:{line}: {dotted(path)}: {message}")

    def value(self, node: yaml.Node, path: PathKey, line: int) -> Any:
        """``node`` as plain data; ``line`` is where ``path`` is written (its key's line)."""
        self.doc.lines[path] = line
        if node in self.in_progress:
            self.problem(line, path, "an alias refers to a value that contains it (recursive structure)")
            return None
        self._count(node, path, line)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.in_progress.add(node)
            try:
                if isinstance(node, yaml.MappingNode):
                    pairs = self.pairs(node, path)
                    return {key: self.value(v, (*path, key), k.start_mark.line + 1) for key, k, v in pairs}
                return [
                    self.value(item, (*path, i), item.start_mark.line + 1)
                    for i, item in enumerate(node.value)
                ]
            finally:
                self.in_progress.discard(node)
        return self.scalar(node, path, line)

    def _count(self, node: yaml.Node, path: PathKey, line: int, weight: int = 1) -> None:
        """Refuse past :data:`MAX_DEPTH`, or once aliases have repeated too much.

        ``weight`` is how many values converting ``node`` again repeats.
        """
        if len(path) > MAX_DEPTH:
            raise _Refused(f"{self.doc.file}:{line}: nested more than {MAX_DEPTH} levels deep")
        if node not in self.seen:
            self.seen.add(node)
            return
        self.repeated += weight
        if self.repeated > MAX_ALIAS_VALUES:
            raise _Refused(
                f"{self.doc.file}:{line}: {dotted(path)}: aliases repeat more than "
                f"{MAX_ALIAS_VALUES} values; refusing to expand them"
            )

    def pairs(self, node: yaml.MappingNode, path: PathKey) -> list[_Pair]:
        """``node``'s entries with ``<<`` merges applied: merged entries first, unless the
        mapping sets the key itself."""
        own: dict[str, _Pair] = {}
        merged: list[_Pair] | None = None
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                if merged is not None:
                    self.problems.append(f"{self.doc.file}:{line}: duplicate key '<<'")
                    continue
                merged = self.merged(value_node, path, line)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in own:
                self.problems.append(f"{self.doc.file}:{line}: duplicate key '{key}'")
                continue
            own[key] = (key, key_node, value_node)
        entries: dict[str, _Pair] = {}
        for pair in merged or []:
            entries.setdefault(pair[0], own.get(pair[0], pair))
        return [*entries.values(), *(pair for key, pair in own.items() if key not in entries)]

    def merged(self, node: yaml.Node, path: PathKey, line: int) -> list[_Pair]:
        """The entries a ``<<`` merge key brings in, earlier mappings first."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = [item for item in items if isinstance(item, yaml.MappingNode)]
        if len(sources) != len(items):
            self.problem(line, path, "a merge key '<<' takes a mapping or a list of mappings")
            return []
        out: list[_Pair] = []
        for source in sources:
            if source in self.in_progress:
                self.problem(line, path, "a merge key '<<' refers to a mapping that contains it")
                continue
            self._count(source, path, line, weight=len(source.value))
            self.in_progress.add(source)
            try:
                out += self.pairs(source, path)
            finally:
                self.in_progress.discard(source)
        return out

    def key(self, node: yaml.Node, path: PathKey) -> str | None:
        """A mapping key, which must be a string; ``None`` (and a problem) otherwise."""
        if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
            return str(node.value)
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            kind = node.tag.rsplit(":", 1)[-1]
            self.problem(line, (*path, node.value), f"a key must be a string, not {kind} (quote it)")
        else:
            kind = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
            self.problem(line, path, f"a key must be a string, not {kind}")
        return None

    def scalar(self, node: yaml.Node, path: PathKey, line: int) -> Any:
        if node.tag == _MERGE_TAG:  # "<<" merges only as a key; as a value it is text
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problem(line, path, str(exc.problem))
        except Exception:  # PyYAML's constructors raise ValueError, KeyError, AttributeError...
            kind = node.tag.rsplit(":", 1)[-1]
            self.problem(line, path, f"'{node.value}' is not a valid {kind}")
        return None


def validation_problems(
    exc: ValidationError, doc: YamlDocument, prefix: PathKey = (), *, data: Any
) -> list[str]:
    """Turn a pydantic error into ``file:line: key: message`` lines.

    ``data`` is what was validated (found at ``prefix`` in ``doc``); it tells real keys
    from the names pydantic adds to a location (union members, validators).
    """
    problems = []
    for err in exc.errors():
        full = (*prefix, *_data_path(err["loc"], data, keep_last=err["type"] == "missing"))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(f"{doc.where(full)}: {dotted(full)}: {msg}")
    return problems


def _data_path(loc: Sequence[str | int], data: Any, *, keep_last: bool) -> PathKey:
    """The parts of a pydantic ``loc`` that are keys or indexes in ``data``.

    pydantic puts other names into locations: union members (``StdioUpstream``, ``str``,
    a discriminator's value), validators, ``[key]``. ``keep_last`` keeps a last part
    that is not in ``data`` (the key a "missing" error names).
    """
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if _has(node, part):
            node = node[part]
            path.append(part)
        elif keep_last and i == len(loc) - 1:
            path.append(part)
    return tuple(path)


def _has(node: Any, part: str | int) -> bool:
    """Whether ``part`` is a key of the mapping or an index of the list ``node``."""
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def validate_document(model: type[M], doc: YamlDocument, data: Any | None = None) -> M:
    """Validate ``data`` (default: the whole document) against ``model``.

    Raises:
        ConfigError: with one ``file:line: key: message`` per problem.
    """
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, doc, data=doc.data if data is None else data)) from None
