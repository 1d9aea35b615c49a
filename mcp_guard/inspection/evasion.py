# ruff: noqa: RUF001  (the confusables table holds look-alike letters on purpose)
"""Hidden and look-alike Unicode: zero-width, bidi controls, tag characters, confusables.

Also builds the *normalised view* used by the injection detector (invisible characters
removed, NFKC applied, Latin look-alikes folded inside mixed-script words) together with
an index map back to the original string, and extracts hidden payloads (tag-character
ASCII, zero-width binary code, right-to-left-override text) for re-scanning. Legitimate
uses are left alone: ZWNJ/ZWJ between non-Latin letters or inside emoji sequences, a
leading BOM, embeddings/isolates in text that has RTL letters, emoji flag tag sequences.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mcp_guard.findings import Severity
from mcp_guard.inspection.hits import Hit

_ZW = re.compile("[\u200b\u200c\u200d\u2060-\u2064\ufeff\u180e\u034f]+")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_RTL_LETTER = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_SUSPECT = re.compile(
    "[\u200b-\u200f\u2060-\u2064\ufeff\u180e\u034f\u00ad\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f"
    "\u0370-\u03ff\u0400-\u04ff\u0500-\u052f\uff01-\uff5e]"
)
_WORD = re.compile(r"[^\W\d_]+(?:[\u200b-\u200d\u2060\u00ad][^\W\d_]+)*")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u034f\u00ad"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

# Cyrillic / Greek letters that render like Latin ones
_CONFUSABLES = {
    "а": "a",
    "в": "b",
    "е": "e",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "ѕ": "s",
    "і": "i",
    "ј": "j",
    "ԁ": "d",
    "һ": "h",
    "ӏ": "l",
    "ԛ": "q",
    "ԝ": "w",
    "ѵ": "v",
    "ү": "y",
    "А": "A",
    "В": "B",
    "Е": "E",
    "К": "K",
    "М": "M",
    "Н": "H",
    "О": "O",
    "Р": "P",
    "С": "C",
    "Т": "T",
    "У": "Y",
    "Х": "X",
    "Ѕ": "S",
    "І": "I",
    "Ј": "J",
    "Ԁ": "D",
    "Һ": "H",
    "Ӏ": "I",
    "Ԛ": "Q",
    "Ԝ": "W",
    "Ү": "Y",
    "α": "a",
    "β": "b",
    "ε": "e",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "Α": "A",
    "Β": "B",
    "Ε": "E",
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
}


@dataclass(frozen=True, slots=True)
class Hidden:
    """Text recovered from hiding, located at ``start:end`` of the original."""

    start: int
    end: int
    text: str
    how: str


def _is_fullwidth_latin(c: str) -> bool:
    return "\uff21" <= c <= "\uff3a" or "\uff41" <= c <= "\uff5a"


def _is_latin(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _confusable_words(text: str) -> list[tuple[int, int]]:
    latin_total = sum(1 for c in text if _is_latin(c))
    foreign_total = sum(1 for c in text if "\u0370" <= c <= "\u052f")
    cjk = _CJK.search(text) is not None
    spans = []
    for m in _WORD.finditer(text):
        word = m.group()
        if word.isascii():
            continue
        letters = [c for c in word if c.isalpha()]
        has_latin = any(_is_latin(c) for c in letters)
        has_foreign = any("\u0370" <= c <= "\u052f" for c in letters)
        has_wide = any(_is_fullwidth_latin(c) for c in letters)
        if has_foreign and all(_is_latin(c) or c in _CONFUSABLES for c in letters):
            if has_latin or latin_total > foreign_total:
                spans.append((m.start(), m.end()))
        elif (
            has_wide
            and (has_latin or not cjk)
            and all(_is_latin(c) or _is_fullwidth_latin(c) for c in letters)
        ):
            spans.append((m.start(), m.end()))
    return spans


def _zero_width_legit(text: str, start: int, end: int) -> bool:
    run = text[start:end]
    if run == "\ufeff" and start == 0:
        return True
    if end - start != 1 or run not in "\u200c\u200d":
        return False
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    return bool(before) and bool(after) and not before.isascii() and not after.isascii()


def _tags_legit(text: str, start: int, end: int) -> bool:
    run = text[start:end]
    return start > 0 and text[start - 1] == "\U0001f3f4" and run.endswith("\U000e007f") and len(run) <= 8


def detect_hidden(text: str) -> list[Hit]:
    """Evasion findings in a non-ASCII string."""
    hits: list[Hit] = []
    for m in _ZW.finditer(text):
        if not _zero_width_legit(text, m.start(), m.end()):
            n = m.end() - m.start()
            hits.append(
                Hit(
                    "ZERO_WIDTH",
                    "evasion",
                    Severity.MEDIUM,
                    m.start(),
                    m.end(),
                    f"{n} zero-width character(s)",
                )
            )
    if _BIDI.search(text):
        rtl_text = _RTL_LETTER.search(text) is not None
        for m in _BIDI.finditer(text):
            if m.group() in "\u202d\u202e" or not rtl_text:
                hits.append(
                    Hit(
                        "BIDI_CONTROL",
                        "evasion",
                        Severity.MEDIUM,
                        m.start(),
                        m.end(),
                        f"bidirectional control U+{ord(m.group()):04X}",
                    )
                )
    for m in _TAGS.finditer(text):
        if not _tags_legit(text, m.start(), m.end()):
            hits.append(
                Hit(
                    "TAG_CHARACTERS",
                    "evasion",
                    Severity.HIGH,
                    m.start(),
                    m.end(),
                    f"{m.end() - m.start()} invisible tag character(s) hiding ASCII text",
                )
            )
    for start, end in _confusable_words(text):
        hits.append(
            Hit("CONFUSABLE", "evasion", Severity.MEDIUM, start, end, "mixed-script or look-alike word")
        )
    return hits


def needs_normalising(text: str) -> bool:
    return not text.isascii() and (
        _SUSPECT.search(text) is not None or not unicodedata.is_normalized("NFKC", text)
    )


def normalised_view(text: str) -> tuple[str, list[int]]:
    """Text with invisibles dropped, NFKC applied and look-alikes folded; plus index map.

    ``index[i]`` is the original index of output character ``i``; ``index[len(out)]`` is
    ``len(text)``.
    """
    fold: set[int] = set()
    for start, end in _confusable_words(text):
        fold.update(range(start, end))
    out: list[str] = []
    index: list[int] = []
    for i, c in enumerate(text):
        if c in _INVISIBLE or "\U000e0000" <= c <= "\U000e007f":
            continue
        if c.isascii():
            out.append(c)
            index.append(i)
            continue
        piece = _CONFUSABLES[c] if i in fold and c in _CONFUSABLES else unicodedata.normalize("NFKC", c)
        for p in piece:
            out.append(p)
            index.append(i)
    index.append(len(text))
    return "".join(out), index


def _zero_width_binary(run: str) -> str | None:
    symbols = sorted(set(run))
    if len(symbols) != 2 or len(run) < 16:
        return None
    for zero in symbols:
        bits = "".join("0" if c == zero else "1" for c in run)
        usable = len(bits) - len(bits) % 8
        data = bytes(int(bits[i : i + 8], 2) for i in range(0, usable, 8))
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if decoded and sum(c.isprintable() or c.isspace() for c in decoded) / len(decoded) > 0.95:
            return decoded
    return None


def hidden_payloads(text: str) -> list[Hidden]:
    """Text hidden by tag characters, zero-width binary code or right-to-left override."""
    found: list[Hidden] = []
    for m in _TAGS.finditer(text):
        if _tags_legit(text, m.start(), m.end()):
            continue
        decoded = "".join(chr(ord(c) - 0xE0000) for c in m.group() if 0x20 <= ord(c) - 0xE0000 < 0x7F)
        if decoded.strip():
            found.append(Hidden(m.start(), m.end(), decoded, "tag characters"))
    for m in _ZW.finditer(text):
        decoded_zw = _zero_width_binary(m.group())
        if decoded_zw:
            found.append(Hidden(m.start(), m.end(), decoded_zw, "zero-width binary code"))
    start = text.find("\u202e")
    while start != -1:
        end = text.find("\u202c", start)
        end = len(text) if end == -1 else end
        segment = "".join(c for c in text[start + 1 : end] if c not in _INVISIBLE)
        if segment.strip():
            found.append(Hidden(start, end, segment[::-1], "right-to-left override (reversed text)"))
        start = text.find("\u202e", end)
    return found
