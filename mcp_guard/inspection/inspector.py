"""The :class:`Inspector`: walks a JSON value and runs every enabled detector on each string."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

import anyio

from mcp_guard.findings import Finding, Severity
from mcp_guard.inspection.anchor_patterns import ATTACK_FAMILIES, FAMILIES, PII_FAMILIES
from mcp_guard.inspection.anchors import find_anchors
from mcp_guard.inspection.attacks import detect_attacks
from mcp_guard.inspection.config import InspectionConfig
from mcp_guard.inspection.credentials import detect_secrets
from mcp_guard.inspection.decoding import find_encoded, transforms
from mcp_guard.inspection.evasion import detect_hidden, hidden_payloads, normalised_view
from mcp_guard.inspection.hits import Hit
from mcp_guard.inspection.injection import detect_injection, looks_imperative
from mcp_guard.inspection.pii import EMAIL_DETAIL, detect_pii, email_spans, emails_at
from mcp_guard.inspection.regions import in_regions, map_span, regions, resolve
from mcp_guard.inspection.ssrf import detect_ssrf

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMERIC_PII = frozenset({"CREDIT_CARD", "US_SSN", "PHONE", "IP_ADDRESS"})
KEY_SUFFIX = "#key"
_MIN_KEY_LEN = 6
_ALL_FAMILIES = frozenset(FAMILIES)
_NUMBER_KINDS = PII_FAMILIES - {"email"}
_NO_SPANS: dict[str, list[tuple[int, int]]] = {}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}(?::\d{2}(?::\d{2})?)?)?|\d{2}:\d{2}:\d{2}")
_MIN_NUMBER = 10**8
OFF_LOOP_BYTES = 64 * 1024
"""From this size a value is scanned in a worker thread (:meth:`Inspector.scan_sized`):
64 KB of ordinary text takes ~3 ms, a megabyte 40-50 ms, and hostile text up to a second.
RE2's searches release the GIL, and the event loop gets its turns in between the rest."""
_VALIDATE_FINDING = Finding.__pydantic_validator__.validate_python
"""Builds a :class:`Finding` from a dict: the same validation as ``Finding(**fields)``
without the keyword-argument call around it (a result can carry thousands of findings)."""
_SCALAR = {bool: True, float: True, type(None): True, int: True}
_FAMILY_CATEGORY = {
    "email": "pii",
    "num": "pii",
    "iban": "pii",
    "ip": "pii",
    "secret": "secret",
    "injection": "injection",
    "sql": "attack",
    "shell": "attack",
    "path": "attack",
    "xss": "attack",
    "ssrf": "attack",
}


_EMAIL_FIELDS = {"type": "EMAIL", "category": "pii", "severity": Severity.LOW, "detail": EMAIL_DETAIL}
"""What every finding of :func:`~mcp_guard.inspection.pii.emails_at` holds but its path and span."""


@lru_cache(maxsize=4096)
def _key_suffix(key: str) -> str:
    if _IDENT.fullmatch(key):
        return f".{key}"
    return f"[{json.dumps(key, ensure_ascii=False)}]"


def child_path(path: str, key: str | int) -> str:
    """JSON path of ``key`` under ``path``: ``$.a``, ``$[3]`` or ``$["odd key"]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return path + _key_suffix(key)


class Inspector:
    """Scans tool arguments and results. Compiled once; stateless, so thread-safe.

    All strings of a value are first searched together for cheap anchors (see :mod:`anchors`);
    the detectors then run only on strings, or windows of long strings, that carry an anchor.
    """

    def __init__(self, config: InspectionConfig | None = None) -> None:
        self.config = config or InspectionConfig()
        cfg = self.config
        self._families = frozenset(
            f
            for f in _ALL_FAMILIES
            if f not in _FAMILY_CATEGORY or cfg.enabled(_FAMILY_CATEGORY[f])  # type: ignore[arg-type]
        )
        # What :meth:`scan` reads on every call, read once: the config is frozen, and an
        # attribute of a pydantic model costs a __getattr__ hook (no fast path) each time.
        self._max_depth = cfg.max_depth
        self._max_scan_chars = cfg.max_scan_chars
        self._pii = cfg.enabled("pii")
        self._attack = cfg.enabled("attack")
        self._numbers = cfg.scan_numbers and self._pii

    # ------------------------------------------------------------------ public
    def scan(self, value: Any, path: str = "$") -> list[Finding]:  # noqa: PLR0915 - hot loop, inlined
        """Findings for every string (and dict key, and long integer) in a JSON value."""
        findings: list[Finding] = []
        strings: list[str] = []
        parents: list[str] = []
        keys: list[str | int | tuple[str] | None] = []
        add_string = strings.append
        add_parent = parents.append
        add_key = keys.append
        key_parents: dict[str, list[str]] = {}  # a repeated dict key is scanned once
        stack: list[tuple[Any, str, int]] = [(value, path, 0)]
        max_depth = self._max_depth
        numbers = self._numbers
        while stack:
            item, at, depth = stack.pop()
            kind = type(item)
            if kind is str:
                add_string(item)
                add_parent(at)
                add_key(None)
            elif kind is dict or (kind is not list and isinstance(item, Mapping)):
                if depth >= max_depth:
                    findings.append(self._too_deep(at))
                    continue
                pending: list[tuple[Any, str, int]] = []
                for raw_key, child in item.items():
                    key = raw_key if type(raw_key) is str else str(raw_key)
                    if len(key) >= _MIN_KEY_LEN and isinstance(raw_key, str):
                        seen = key_parents.get(key)
                        if seen is None:
                            key_parents[key] = [at]
                            add_string(key)
                            add_parent(at)
                            add_key((key,))
                        else:
                            seen.append(at)
                    kind = type(child)
                    if kind is str:
                        add_string(child)
                        add_parent(at)
                        add_key(key)
                    elif (
                        kind is dict
                        or kind is list
                        or (kind is int and numbers and abs(child) >= _MIN_NUMBER)
                        or not _SCALAR.get(kind)
                    ):
                        pending.append((child, at + _key_suffix(key), depth + 1))
                if pending:
                    stack.extend(reversed(pending))
            elif kind is list or (
                isinstance(item, Sequence) and not isinstance(item, str | bytes | bytearray)
            ):
                if depth >= max_depth:
                    findings.append(self._too_deep(at))
                    continue
                pending = []
                for i, child in enumerate(item):
                    kind = type(child)
                    if kind is str:
                        add_string(child)
                        add_parent(at)
                        add_key(i)
                    elif (
                        kind is dict
                        or kind is list
                        or (kind is int and numbers and abs(child) >= _MIN_NUMBER)
                        or not _SCALAR.get(kind)
                    ):
                        pending.append((child, f"{at}[{i}]", depth + 1))
                if pending:
                    stack.extend(reversed(pending))
            elif isinstance(item, str):
                add_string(str(item))
                add_parent(at)
                add_key(None)
            elif self._scannable_number(item):
                hits = [h for h in detect_pii(str(item)) if h.type in _NUMERIC_PII]
                findings += [self._finding(h.moved(None, None, h.detail), at) for h in hits]
        if not strings:
            return findings
        limit = self._max_scan_chars
        scanned = strings
        long_ones: set[int] = set()
        joined = "\x00".join(strings)
        if len(joined) > limit and max(map(len, strings)) > limit:  # no string is longer than all of them
            long_ones = {i for i, s in enumerate(strings) if len(s) > limit}
            scanned = [s if len(s) <= limit else s[:limit] for s in strings]
            joined = "\x00".join(scanned)
        anchored = find_anchors(scanned, self._families, joined)
        todo = set(anchored).union(long_ones) if long_ones else set(anchored)
        if not joined.isascii():
            todo.update(i for i, s in enumerate(scanned) if not s.isascii())
        if self._attack and joined.count("\x00") > len(scanned) - 1:
            todo.update(i for i, s in enumerate(scanned) if "\x00" in s)
        if not todo:  # no string holds an anchor (most values)
            return findings
        emails_only = self._pii
        for i in sorted(todo):
            spans = anchored.pop(i, _NO_SPANS)  # freed once read: fewer live objects, fewer GC passes
            text = scanned[i]
            if emails_only and len(spans) == 1 and "email" in spans and i not in long_ones and text.isascii():
                emails = email_spans(text, spans["email"])  # the most common finding: no Hit for it
                hits = []
            else:
                emails = []
                hits = self._hits(strings[i], text, spans)
            if hits or emails:
                where = keys[i]
                if isinstance(where, tuple):
                    suffix = _key_suffix(where[0]) + KEY_SUFFIX
                    places = [parent + suffix for parent in key_parents[where[0]]]
                elif isinstance(where, int):
                    places = [f"{parents[i]}[{where}]"]
                elif where is not None:
                    places = [parents[i] + _key_suffix(where)]
                else:
                    places = [parents[i]]
                if emails:
                    findings += [
                        _VALIDATE_FINDING({**_EMAIL_FIELDS, "path": at, "start": start, "end": end})
                        for at in places
                        for start, end in emails
                    ]
                else:
                    findings += [self._finding(h, at) for at in places for h in hits]
        return findings

    async def scan_sized(self, value: Any, path: str, size: int) -> list[Finding]:
        """:meth:`scan`, in a worker thread when the value's JSON form is ``size`` bytes
        and that is at least :data:`OFF_LOOP_BYTES`: large values would otherwise hold the
        event loop, and every other call, for their whole scan."""
        if size < OFF_LOOP_BYTES:
            return self.scan(value, path)
        return await anyio.to_thread.run_sync(self.scan, value, path)

    def scan_text(self, text: str, path: str = "$") -> list[Finding]:
        """Findings in one string."""
        return [self._finding(h, path) for h in self.text_hits(text)]

    # ---------------------------------------------------------------- internal
    def text_hits(self, text: str, depth: int = 0, decoded: bool = False) -> list[Hit]:
        limit = self.config.max_scan_chars
        scanned = text if len(text) <= limit else text[:limit]
        spans = find_anchors([scanned], self._families).get(0, _NO_SPANS)
        return self._hits(text, scanned, spans, depth, decoded)

    def _hits(
        self,
        original: str,
        text: str,
        spans: dict[str, list[tuple[int, int]]],
        depth: int = 0,
        decoded: bool = False,
    ) -> list[Hit]:
        cfg = self.config
        if len(text) < 3:
            return []
        hits: list[Hit] = []
        if len(original) > len(text):
            hits.append(
                Hit(
                    "SCAN_TRUNCATED",
                    "evasion",
                    Severity.LOW,
                    len(text),
                    len(original),
                    f"only the first {len(text)} characters were scanned",
                )
            )
        if not decoded and cfg.enabled("pii"):
            if "email" in spans:
                hits += emails_at(text, spans["email"])
            kinds = _NUMBER_KINDS.intersection(spans)
            if kinds == {"num"} and all(_DATE.fullmatch(text, a, b) for a, b in spans["num"]):
                kinds = frozenset()  # only dates/timestamps (2024-06-01, 2024-06-01 10:00:00)
            if kinds:
                pii_spans = [sp for f in kinds for sp in spans[f]]
                hits += in_regions(partial(detect_pii, kinds=kinds), text, regions(pii_spans, len(text), 120))
        if cfg.enabled("secret") and "secret" in spans:
            radius = len(text) if "PRIVATE KEY" in text else 500
            hits += in_regions(detect_secrets, text, regions(spans["secret"], len(text), radius))
        if not decoded and cfg.enabled("attack"):
            if not ATTACK_FAMILIES.isdisjoint(spans) or "encoded" in spans or "\x00" in text:
                hits += detect_attacks(text, ATTACK_FAMILIES.intersection(spans))
            if "ssrf" in spans:
                hits += detect_ssrf(text)
        want_injection = cfg.enabled("injection")
        non_ascii = not text.isascii()
        hidden = detect_hidden(text) if non_ascii and "hidden" in spans else []
        if cfg.enabled("evasion"):
            hits += hidden
        if want_injection:
            if non_ascii and ("hidden" in spans or not unicodedata.is_normalized("NFKC", text)):
                hits += self._normalised_injection(text, hidden)
            elif "injection" in spans:
                hits += in_regions(detect_injection, text, regions(spans["injection"], len(text), 300))
        if (
            depth < cfg.max_decode_depth
            and (want_injection or cfg.enabled("secret"))
            and ("hidden" in spans or "encoded" in spans or "transform" in spans)
        ):
            hits += self._rescan(text, depth, any(h.category == "injection" for h in hits), spans)
        return resolve(hits) if len(hits) > 1 else hits

    def _normalised_injection(self, text: str, hidden: list[Hit]) -> list[Hit]:
        view, index = normalised_view(text)
        found = [map_span(h, index) for h in detect_injection(view)]
        disguised = [h for h in hidden if h.type in ("CONFUSABLE", "ZERO_WIDTH")]
        if not found and len(disguised) >= 3 and looks_imperative(view):
            start, end = min(h.start or 0 for h in disguised), max(h.end or 0 for h in disguised)
            found = [
                Hit(
                    "PROMPT_INJECTION",
                    "injection",
                    Severity.HIGH,
                    start,
                    end,
                    "instruction disguised with look-alike or invisible characters",
                )
            ]
        if found and not detect_injection(text):
            found = [h.moved(h.start, h.end, f"{h.detail} (after Unicode normalisation)") for h in found]
        return found

    def _rescan(
        self, text: str, depth: int, already_injection: bool, spans: dict[str, list[tuple[int, int]]]
    ) -> list[Hit]:
        cfg = self.config
        out: list[Hit] = []
        hidden = hidden_payloads(text) if "hidden" in spans else []
        for h in hidden:
            subs = self.text_hits(h.text, depth + 1, decoded=True)
            for sub in subs:
                out.append(sub.moved(h.start, h.end, f"in text hidden by {h.how}: {sub.detail}"))
            if cfg.enabled("injection") and not subs and len(h.text.split()) >= 3:
                out.append(
                    Hit(
                        "PROMPT_INJECTION",
                        "injection",
                        Severity.HIGH,
                        h.start,
                        h.end,
                        f"text hidden by {h.how}",
                    )
                )
        if "encoded" in spans:
            budget = cfg.max_decoded_chars
            for lo, hi in regions(spans["encoded"], len(text), 512, grow=True, text=text):
                for d in find_encoded(text[lo:hi], cfg.min_encoded_length, budget):
                    budget -= len(d.text)
                    subs = self.text_hits(d.text, depth + 1, decoded=True)
                    for sub in subs:
                        out.append(
                            sub.moved(lo + d.start, lo + d.end, f"in {d.how}-decoded text: {sub.detail}")
                        )
                    if (
                        cfg.enabled("injection")
                        and not any(sub.category == "injection" for sub in subs)
                        and len(d.text.split()) >= 4
                        and looks_imperative(d.text)
                    ):
                        out.append(
                            Hit(
                                "PROMPT_INJECTION",
                                "injection",
                                Severity.HIGH,
                                lo + d.start,
                                lo + d.end,
                                f"imperative instruction hidden by {d.how} encoding",
                            )
                        )
        if (
            "transform" in spans
            and cfg.enabled("injection")
            and not already_injection
            and not out
            and len(text) <= 20_000
        ):
            for variant, how in transforms(text, text.lower()):
                for sub in detect_injection(variant):
                    out.append(sub.moved(0, len(text), f"after decoding {how}: {sub.detail}"))
                    break
                if out:
                    break
        return out

    def _scannable_number(self, item: Any) -> bool:
        return (
            isinstance(item, int)
            and not isinstance(item, bool)
            and self.config.scan_numbers
            and abs(item) >= _MIN_NUMBER
            and self.config.enabled("pii")
        )

    @staticmethod
    def _finding(hit: Hit, path: str) -> Finding:
        finding: Finding = _VALIDATE_FINDING(
            {
                "type": hit.type,
                "category": hit.category,
                "severity": hit.severity,
                "path": path,
                "start": hit.start,
                "end": hit.end,
                "detail": hit.detail,
            }
        )
        return finding

    @staticmethod
    def _too_deep(path: str) -> Finding:
        return Finding(
            type="NESTING_TOO_DEEP",
            category="evasion",
            severity=Severity.MEDIUM,
            path=path,
            detail="value nested deeper than max_depth was not scanned",
        )
