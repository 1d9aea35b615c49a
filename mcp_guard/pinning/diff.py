"""A readable diff of a pinned and a pending tool definition, for an operator deciding on it.

Three parts: a unified diff of the pretty-printed JSON (invisible characters shown
as escapes, Unicode tag text decoded, so hidden instructions cannot hide in the
diff); every changed description or title, word by word (``[-removed-]``,
``{+added+}``), because that is where rug pulls put their instructions; and the
poisoning findings.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from mcp_guard.audit.models import format_time
from mcp_guard.pinning.models import PendingChange, Pin

_TEXT_KEYS = ("description", "title")
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")


def reveal(text: str) -> str:
    """``text`` with invisible characters escaped and Unicode tag runs decoded."""
    text = _TAG_RUN.sub(_decode_tags, text)
    return "".join(_escape(ch) if unicodedata.category(ch) in _INVISIBLE else ch for ch in text)


def pretty(definition: Mapping[str, Any]) -> str:
    """Indented JSON with sorted keys, invisible characters revealed."""
    text = json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False)
    return "\n".join(reveal(line) for line in text.split("\n"))


def render_diff(pin: Pin | None, pending: PendingChange) -> str:
    """The operator's view of a pending definition against its pin (``None``: a new tool)."""
    label = f"{pending.upstream}/{pending.name}"
    old_label = (
        f"{label} pinned {format_time(pin.pinned_at)} by {pin.pinned_by} ({pin.fingerprint[:12]})"
        if pin is not None
        else f"{label} (not pinned)"
    )
    new_label = (
        f"{label} {pending.state.value} since {format_time(pending.first_seen)} "
        f"({pending.fingerprint[:12]}, reason: {pending.reason.value})"
    )
    old_lines = pretty(pin.definition).splitlines() if pin is not None else []
    new_lines = pretty(pending.definition).splitlines()
    out = list(difflib.unified_diff(old_lines, new_lines, old_label, new_label, n=3, lineterm=""))
    if pin is not None and pin.fingerprint == pending.fingerprint:
        out += [f"--- {old_label}", f"+++ {new_label}", "(definition unchanged since it was pinned)"]
    changes = list(text_changes(pin.definition if pin is not None else {}, pending.definition))
    if changes:
        out += ["", "Description changes:"]
        for path, before, after in changes:
            out += [f"  {path}", f"    {word_diff(before, after)}"]
    if pending.findings:
        out += ["", "Poisoning findings (accepting needs --force):"]
        for f in pending.findings:
            out.append(f"  {f.severity.value.upper()} {f.type} at {f.path}: {f.detail}")
    return "\n".join(out) + "\n"


def text_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """``(path, before, after)`` for every description or title that differs (absent is ``""``)."""
    before, after = dict(_texts(old, "$")), dict(_texts(new, "$"))
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path, ""), after.get(path, "")
        if a != b:
            yield path, a, b


def word_diff(before: str, after: str) -> str:
    """``after`` with removed words as ``[-...-]`` and added words as ``{+...+}``, revealed."""
    a, b = re.findall(r"\s+|\S+", before), re.findall(r"\s+|\S+", after)
    parts: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append("".join(a[i1:i2]))
            continue
        if i2 > i1:
            parts.append("[-" + "".join(a[i1:i2]) + "-]")
        if j2 > j1:
            parts.append("{+" + "".join(b[j1:j2]) + "+}")
    return reveal("".join(parts))


def _texts(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            sub = f"{path}.{key}" if re.fullmatch(r"[A-Za-z_]\w*", str(key)) else f'{path}["{key}"]'
            if key in _TEXT_KEYS and isinstance(value, str):
                yield sub, value
            else:
                yield from _texts(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _texts(value, f"{path}[{i}]")


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _decode_tags(match: re.Match[str]) -> str:
    hidden = "".join(chr(ord(c) - 0xE0000) if 0xE0020 <= ord(c) <= 0xE007E else "" for c in match.group())
    return f"\u27e6hidden tag text: {hidden!r}\u27e7"
