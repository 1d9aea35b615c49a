"""Cheap candidate search: which detector families can possibly fire on which string.

Every detector family has an *anchor* pattern: rare, specific tokens that any finding of
that family must contain (an ``@`` for e-mail, a run of 7+ digits for numbers, a key
prefix for credentials, an override verb or AI addressee for prompt injection, a
separator followed by a command word for shell injection ...). All anchors run as
RE2 automata (linear time, no backtracking) over all strings of a JSON value joined
into one buffer: ``re2.Set`` passes tell which families occur at all (one combined
automaton, or a few small groups on text it has not seen, see :func:`_present`), then one
pass per present family records where. Expensive Python regexes then run only on the
strings, or the windows of long strings, that carry an anchor of their family.
"""

from __future__ import annotations

import bisect
import functools
import re
import time
from typing import Any

from mcp_guard.inspection.anchor_patterns import FAMILIES
from mcp_guard.re2 import re2

_SEP = "\x00"


def _python_pattern(pattern: str) -> re.Pattern[str]:
    """The same anchor in Python ``re`` syntax: the reference the RE2 path is tested against."""
    pattern = re.sub(r"\\x\{([0-9a-fA-F]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", pattern)
    return re.compile(pattern.replace("\\z", "\\Z"))


_NAMES = tuple(FAMILIES)
_PY_REGEX = {name: _python_pattern(pattern) for name, pattern in FAMILIES.items()}
_opts = re2.Options()
_opts.max_mem = 16 << 20
"""Each automaton's budget, its lazily built DFA states included: hostile text keeps
creating states, and without a bound every automaton would grow to its limit."""
_opts.log_errors = False

GROUPS: tuple[tuple[str, ...], ...] = (
    ("injection",),
    ("email", "num", "iban", "ip"),
    ("ssrf", "path", "hidden", "transform"),
    ("secret",),
    ("encoded",),
    ("sql", "shell", "xss"),
)
"""Families searched together by one automaton when the combined one is not used. Each
automaton's DFA is built lazily, a state at a time. The combined automaton is the
fastest on the text it has seen (a 4 KB e-mail in 15 µs), but on text it has not seen
(random words or characters) nearly every byte builds a new state out of thousands of
NFA states: ~13 µs a byte, 55 ms for 4 KB. These groups keep each automaton small:
2-10 ms for such 4 KB, then ~1 ms once warm, 50 µs for the 4 KB e-mail."""


class _Automaton:
    """One ``re2.Set`` over some families, with a witness that its search finished."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.indexes = tuple(_NAMES.index(name) for name in names)
        self.names = frozenset(names)
        automaton: Any = re2.Set.SearchSet(_opts)
        for name in names:
            automaton.Add(FAMILIES[name])
        self._finished = automaton.Add(r"\z")
        automaton.Compile()
        self._match = automaton._set.Match

    def present(self, data: bytes) -> list[int]:
        """Indexes (in :data:`_NAMES`) of this automaton's families found in ``data``.

        A set whose DFA runs out of memory answers nothing at all; the end-of-text
        witness tells that apart from "no family", and each family is then searched alone
        (a single regex falls back to its NFA rather than failing)."""
        matched = self._match(data)
        if len(matched) == 1 and matched[0] == self._finished:  # only the witness: no family (most text)
            return []
        if self._finished in matched:
            return [self.indexes[i] for i in matched if i != self._finished]
        return _each_alone(self.indexes, data)


assert sorted(n for group in GROUPS for n in group) == sorted(_NAMES), "every family in one group"
_COMBINED = _Automaton(_NAMES)
_GROUPS = tuple(_Automaton(names) for names in GROUPS)
_REGEX: dict[str, Any] = {name: re2.compile(pattern, _opts)._regexp for name, pattern in FAMILIES.items()}
_UNANCHORED: Any = re2._Anchor.UNANCHORED
_TOKEN_RUN_LENGTH = 256
_TOKEN_RUN: Any = re2.compile(rf"[A-Za-z0-9+/=_%-]{{{_TOKEN_RUN_LENGTH}}}", _opts)._regexp
"""256 characters of a base64, hex or URL-encoded run: high-entropy text. Shorter data
cannot hold one and is not searched (most arguments and results of small tools)."""
_COMBINED_MAX_BYTES = 4096


class RestingSwitch:
    """Whether the combined automaton may search now: it rests after meeting unfamiliar
    text twice within ``window_s`` (each a search costing more than ``slow_s`` of CPU),
    for ``rest_s``.

    Warm, the combined automaton searches 4 KB in ~15 µs; text whose states it must
    first build (random characters, or the first source file or README it sees) takes
    20-55 ms. Once-off slow searches are its warm-up and leave it working; a stream of
    them is someone feeding it unfamiliar text, and costs two such searches a minute
    instead of one per call. Only speed depends on this: both paths give one answer.

    A search's cost is the CPU time of the thread that ran it, not the wall time: on a
    busy host a cheap search preempted for a few milliseconds is no sign of unfamiliar
    text (timed by the wall clock, half the searches of one loaded run rested it).
    """

    def __init__(self, *, slow_s: float = 0.002, window_s: float = 10.0, rest_s: float = 60.0) -> None:
        self._slow_s = slow_s
        self._window_s = window_s
        self._rest_s = rest_s
        self._last_slow_at = -window_s
        self._rests_until = 0.0

    @property
    def slow_s(self) -> float:
        """CPU seconds above which a search counts as slow."""
        return self._slow_s

    def may_search(self, now: float) -> bool:
        return now >= self._rests_until

    def searched(self, cost_s: float, at: float) -> None:
        """A search at ``at`` (monotonic seconds) cost ``cost_s`` seconds of CPU."""
        if cost_s > self._slow_s:
            self.was_slow(at)

    def was_slow(self, at: float) -> None:
        """A search at ``at`` met unfamiliar text."""
        if at - self._last_slow_at < self._window_s:
            self._rests_until = at + self._rest_s
        self._last_slow_at = at


_COMBINED_SWITCH = RestingSwitch()


def _each_alone(indexes: tuple[int, ...], data: bytes) -> list[int]:
    end = len(data)
    return [i for i in indexes if _REGEX[_NAMES[i]].Match(_UNANCHORED, data, 0, end)[0][0] >= 0]


@functools.cache
def _searched(families: frozenset[str]) -> tuple[_Automaton, ...]:
    """The groups holding any of ``families``."""
    return tuple(group for group in _GROUPS if not group.names.isdisjoint(families))


def _present(
    data: bytes, families: frozenset[str] = frozenset(_NAMES), starts: list[int] | None = None
) -> list[int]:
    """Indexes (in :data:`_NAMES`) of families whose anchor occurs in ``data``: at least
    all of ``families`` that do. ``starts``: where each string of ``data`` begins, when
    it holds more than one (joined by ``\\x00``).

    - Text with a long base64/hex-like run: one pass per family, each stopping at its
      first match. On such text even the grouped automata meet a new state at almost
      every byte (twice the cost of the families alone).
    - Other text up to 4 KB: one pass of the combined automaton, unless it is resting
      (:class:`RestingSwitch`).
    - More strings than that: the combined automaton a chunk of whole strings at a time
      (:func:`_present_in_chunks`), unless it is resting.
    - One longer string, or while it rests: one pass per group holding a wanted family.
    """
    end = len(data)
    if end >= _TOKEN_RUN_LENGTH and _TOKEN_RUN.Match(_UNANCHORED, data, 0, end)[0][0] >= 0:
        return _each_alone(tuple(i for group in _searched(families) for i in group.indexes), data)
    if end <= _COMBINED_MAX_BYTES:
        now = time.monotonic()
        if _COMBINED_SWITCH.may_search(now):
            began = time.thread_time()
            found = _COMBINED.present(data)
            # A thread cannot use more CPU time than the wall time that passed: a search
            # that took no more than ``slow_s`` by the (cheap, vDSO) wall clock cannot be slow,
            # and the CPU clock (a system call, ~1 µs) is read again only for one that did.
            if time.monotonic() - now > _COMBINED_SWITCH.slow_s:
                _COMBINED_SWITCH.searched(time.thread_time() - began, now)
            return found
    elif starts is not None and len(starts) > 1 and _COMBINED_SWITCH.may_search(time.monotonic()):
        return _present_in_chunks(data, starts, _searched(families))
    return [i for group in _searched(families) for i in group.present(data)]


_CHUNK_ALLOWANCE_S = 0.005
_CHUNK_S_PER_BYTE = 20e-9
"""What the chunked combined pass may spend on one value: a warm-up allowance plus
about twice what the groups take per byte (~9 ns). Warm, it takes ~3 ns a byte; the
first large value of a kind it has not seen costs 15-30 ms a megabyte while it builds
its states; unfamiliar text (random characters) up to 13 µs a byte."""


def chunks(starts: list[int], end: int) -> list[tuple[int, int]]:
    """Byte ranges ``[lo, hi)`` of runs of whole strings, each at most
    :data:`_COMBINED_MAX_BYTES` long unless it is a single string longer than that.

    ``starts``: where each string begins in a buffer of ``end`` bytes, the strings
    separated by one byte each. The separators between runs belong to none."""
    ranges: list[tuple[int, int]] = []
    count = len(starts)
    k = 0
    while k < count:
        lo = starts[k]
        if end - lo <= _COMBINED_MAX_BYTES:
            ranges.append((lo, end))
            break
        after = max(bisect.bisect_right(starts, lo + _COMBINED_MAX_BYTES + 1) - 1, k + 1)
        ranges.append((lo, starts[after] - 1 if after < count else end))
        k = after
    return ranges


def _present_in_chunks(data: bytes, starts: list[int], groups: tuple[_Automaton, ...]) -> list[int]:
    """:func:`_present` for many strings: the combined automaton on each chunk of whole
    strings (:func:`chunks`), which bounds what one search can cost on text it has not
    seen. A family counts when its anchor occurs within one string, as every detector
    reads one string at a time (an anchor match that only exists across the separator
    between two strings is no reason to run a detector on either).

    Over its budget of CPU time (:data:`_CHUNK_S_PER_BYTE`) the search is slow for the
    :class:`RestingSwitch`, and the groups read the rest of ``data``."""
    found: set[int] = set()
    spent = 0.0
    searched = 0
    for lo, hi in chunks(starts, len(data)):
        if hi - lo > _COMBINED_MAX_BYTES:
            found.update(i for group in groups for i in group.present(data[lo:hi]))
            continue
        began = time.thread_time()
        found.update(_COMBINED.present(data[lo:hi]))
        spent += time.thread_time() - began
        searched += hi - lo
        if spent > _CHUNK_ALLOWANCE_S + searched * _CHUNK_S_PER_BYTE:
            _COMBINED_SWITCH.was_slow(time.monotonic())
            rest = data[hi:]
            found.update(i for group in groups for i in group.present(rest))
            break
    return sorted(found)


def _find_anchors_python(
    strings: list[str], families: frozenset[str], joined: str
) -> dict[int, dict[str, list[tuple[int, int]]]]:
    found: dict[int, dict[str, list[tuple[int, int]]]] = {}
    starts: list[int] = []
    pos = 0
    for text in strings:
        starts.append(pos)
        pos += len(text) + 1
    for name in _NAMES:
        if name not in families:
            continue
        for m in _PY_REGEX[name].finditer(joined):
            s, e = m.span()
            k = bisect.bisect_right(starts, s) - 1
            last = bisect.bisect_right(starts, max(s, e - 1)) - 1
            for j in range(k, last + 1):
                lo = max(s - starts[j], 0)
                span = (lo, max(min(e - starts[j], len(strings[j])), lo))
                found.setdefault(j, {}).setdefault(name, []).append(span)
    return found


def find_anchors(  # noqa: PLR0915 - hot loop, inlined
    strings: list[str], families: frozenset[str], joined: str | None = None
) -> dict[int, dict[str, list[tuple[int, int]]]]:
    """Anchors of the enabled ``families``: string index -> family -> (start, end) character spans.

    Strings without any anchor are absent. One automaton pass over all strings, plus one pass
    per family that occurs at all.
    """
    found: dict[int, dict[str, list[tuple[int, int]]]] = {}
    if not strings:
        return found
    if joined is None:
        joined = _SEP.join(strings) if len(strings) > 1 else strings[0]
    if _GROUPS is None:
        return _find_anchors_python(strings, families, joined)
    ascii_only = joined.isascii()
    parts: list[bytes] = []
    if ascii_only:
        data = joined.encode("ascii")
        lengths = [len(s) for s in strings]
    else:
        parts = [s.encode("utf-8", "surrogatepass") for s in strings]
        data = b"\x00".join(parts)
        lengths = [len(p) for p in parts]
    single = len(strings) == 1
    starts: list[int] = []
    if not single and len(data) > _COMBINED_MAX_BYTES:  # searched a chunk of strings at a time
        starts = _starts(lengths)
    present = _present(data, families, starts)
    if not present:  # most values: nothing more to do, not even to find where each string starts
        return found
    wanted = [_NAMES[i] for i in sorted(present) if _NAMES[i] in families]
    if not wanted:
        return found
    if not single and not starts:
        starts = _starts(lengths)
    end = len(data)
    bisect_left, bisect_right = bisect.bisect_left, bisect.bisect_right
    bounds = [*starts, end + 1]  # where the next string would begin, the last one's too
    for name in wanted:
        match = _REGEX[name].Match
        pos = 0
        k = 0
        while pos <= end:
            s, e = match(_UNANCHORED, data, pos, end)[0]
            if s < 0:
                break
            pos = e if e > s else e + 1
            if single:
                found.setdefault(0, {}).setdefault(name, []).append((s, e))
                continue
            k = bisect_right(bounds, s, k) - 1  # the string holding s
            if e < bounds[k + 1]:  # within it
                base = bounds[k]
                span = (s - base, e - base)
                by_family = found.get(k)
                if by_family is None:
                    found[k] = {name: [span]}
                elif name in by_family:
                    by_family[name].append(span)
                else:
                    by_family[name] = [span]
                continue
            for j in range(k, bisect_left(starts, e, k)):  # every string the match touches
                base = starts[j]
                lo = max(s - base, 0)
                span = (lo, max(min(e - base, lengths[j]), lo))
                by_family = found.get(j)
                if by_family is None:
                    found[j] = {name: [span]}
                elif name in by_family:
                    by_family[name].append(span)
                else:
                    by_family[name] = [span]
    if not ascii_only:
        for k, by_family in found.items():
            if not strings[k].isascii():
                raw = parts[k]
                found[k] = {
                    f: [(_chars(raw, a), _chars(raw, b)) for a, b in sp] for f, sp in by_family.items()
                }
    return found


def _starts(lengths: list[int]) -> list[int]:
    """Where each string begins in a buffer of strings of ``lengths`` joined by one byte."""
    starts: list[int] = []
    pos = 0
    for n in lengths:
        starts.append(pos)
        pos += n + 1
    return starts


def _chars(raw: bytes, offset: int) -> int:
    return len(raw[:offset].decode("utf-8", "ignore"))


def windows(spans: list[tuple[int, int]], length: int, radius: int) -> list[tuple[int, int]]:
    """Merged ``[start, end)`` windows of ``radius`` characters around each span."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        lo, hi = max(0, s - radius), min(length, e + radius)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged
