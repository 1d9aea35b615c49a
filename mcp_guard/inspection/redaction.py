"""Redaction: a copy of a JSON value with every finding's span replaced by its placeholder."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mcp_guard.findings import Finding, Severity

_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[(\"(?:[^\"\\]|\\.)*\")\]")
_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
_KEY_SUFFIX = "#key"


def parse_path(path: str) -> list[str | int] | None:
    """``$.a[2]["b c"]`` -> ``["a", 2, "b c"]``; ``None`` if malformed."""
    if not path.startswith("$"):
        return None
    tokens: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None:
            return None
        if m.group(1) is not None:
            tokens.append(m.group(1))
        elif m.group(2) is not None:
            tokens.append(int(m.group(2)))
        else:
            tokens.append(str(json.loads(m.group(3))))
        pos = m.end()
    return tokens


def redact_text(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with the findings' spans replaced; a whole-value finding replaces all of it."""
    whole = [f for f in findings if f.start is None or f.end is None]
    if whole:
        return max(whole, key=lambda f: _RANK[f.severity]).placeholder
    spans = sorted((f for f in findings), key=lambda f: (f.start or 0, -(f.end or 0)))
    merged: list[tuple[int, int, Finding]] = []
    for f in spans:
        start, end = max(0, f.start or 0), min(len(text), f.end or 0)
        if end <= start:
            continue
        if merged and start < merged[-1][1]:
            last_start, last_end, last = merged[-1]
            best = f if _RANK[f.severity] > _RANK[last.severity] else last
            merged[-1] = (last_start, max(last_end, end), best)
        else:
            merged.append((start, end, f))
    out = text
    for start, end, f in reversed(merged):
        out = out[:start] + f.placeholder + out[end:]
    return out


def _container_and_key(root: Any, tokens: list[str | int]) -> tuple[Any, str | int] | None:
    node = root
    for token in tokens[:-1]:
        node = _child(node, token)
        if node is None:
            return None
    return node, tokens[-1]


def _child(node: Any, token: str | int) -> Any:
    if isinstance(node, dict) and isinstance(token, str):
        return node.get(token)
    if isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
        return node[token]
    return None


def redact(value: Any, findings: Sequence[Finding]) -> Any:
    """A redacted deep copy of ``value``; ``value`` itself is never modified.

    Findings whose path does not exist in ``value`` are ignored.
    """
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_path[f.path].append(f)
    result = copy.deepcopy(value)
    for path in sorted((p for p in by_path if not p.endswith(_KEY_SUFFIX)), key=len, reverse=True):
        tokens = parse_path(path)
        if tokens is None:
            continue
        if not tokens:
            result = (
                redact_text(result, by_path[path])
                if isinstance(result, str)
                else by_path[path][0].placeholder
            )
            continue
        found = _container_and_key(result, tokens)
        if found is None:
            continue
        container, key = found
        current = _child(container, key)
        if current is None and not (isinstance(container, dict) and key in container):
            continue
        new = (
            redact_text(current, by_path[path]) if isinstance(current, str) else by_path[path][0].placeholder
        )
        container[key] = new
    for path in sorted((p for p in by_path if p.endswith(_KEY_SUFFIX)), key=len, reverse=True):
        tokens = parse_path(path[: -len(_KEY_SUFFIX)])
        if not tokens:
            continue
        found = _container_and_key(result, tokens)
        if found is None:
            continue
        container, key = found
        if isinstance(container, dict) and isinstance(key, str) and key in container:
            new_key = redact_text(key, by_path[path])
            container[new_key] = container.pop(key)
    return result
