"""RE2 pre-check for Python rule patterns: which rules can possibly match a text.

Each Python pattern is turned into a *superset* RE2 pattern (lookarounds dropped), so on
ASCII text an RE2 miss proves the Python pattern misses too. Per-rule automata (linear time,
no backtracking) name the candidates, and only those run in Python, which still decides with
exact semantics and spans. Non-ASCII text makes every rule a candidate.
"""

from __future__ import annotations

from typing import Any

from mcp_guard.re2 import re2


def _skip_group(pattern: str, i: int) -> int:
    """Index just after the group that starts at ``pattern[i] == '('``."""
    depth = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def superset(pattern: str) -> str:
    """An RE2 pattern matching, on ASCII text, at least everything ``pattern`` (Python syntax) matches.

    On ASCII input ``\\w``, ``\\s``, ``\\d`` and ``\\b`` mean the same in both engines, so only
    lookarounds (which only restrict a match) are dropped.
    """
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in "AZ" and not in_class:
                pass  # anchors only restrict: dropping them widens the match
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            out.append(c)
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("\\]")
                i += 1
            i += 1
            continue
        if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            i = _skip_group(pattern, i)
            continue
        out.append(c)
        i += 1
    return "".join(out)


_GROUP = 16  # patterns per combined automaton: small enough that its DFA stays in memory


class RulePrefilter:
    """Which of a list of Python patterns can match a text, decided by RE2."""

    def __init__(self, patterns: list[str]) -> None:
        self._count = len(patterns)
        opts = re2.Options()
        opts.max_mem = 64 << 20
        wide = [superset(p) for p in patterns]
        self._each: list[Any] = [re2.compile("(?m)" + w, opts)._regexp for w in wide]
        self._anchor: Any = re2._Anchor.UNANCHORED
        self._any: list[tuple[range, Any]] = [
            (
                range(start, min(start + _GROUP, len(wide))),
                re2.compile(
                    "(?m)" + "|".join(f"(?:{w})" for w in wide[start : start + _GROUP]), opts
                )._regexp,
            )
            for start in range(0, len(wide), _GROUP)
        ]

    def candidates(self, text: str) -> list[int]:
        """Indexes of the patterns that may match ``text`` (all of them for non-ASCII text)."""
        if not text.isascii():
            return list(range(self._count))
        data = text.encode("ascii")
        end = len(data)
        anchor = self._anchor
        each = self._each
        found: list[int] = []
        for members, group in self._any:
            if group.Match(anchor, data, 0, end)[0][0] >= 0:
                found += [i for i in members if each[i].Match(anchor, data, 0, end)[0][0] >= 0]
        return found
