"""Bounded decoding of encoded text for re-scanning.

Finds Base64 (also URL-safe and in ``data:`` URLs), Base32, hex (plain, spaced,
``\\xNN``), percent-encoding, ``\\uNNNN`` escapes, 8-bit binary and HTML numeric
entities; decodes a candidate only when the result is readable text (binary attachments,
hashes and checksums decode to bytes that are not, and are dropped). Also offers whole-text
transforms for common obfuscations of natural language: ROT13 (when mentioned),
reversed text, leetspeak, letter spacing and Morse code.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
from dataclasses import dataclass
from urllib.parse import unquote

_B64 = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{16,}={0,2}(?![\w+/=-])")
_B32 = re.compile(r"(?<![A-Z2-7=])[A-Z2-7]{16,}={0,6}(?![A-Z2-7=])")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}[ \n:]?){8,}(?![0-9A-Za-z])")
_HEX_ESC = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){4,}")
_PCT = re.compile(r"(?:%[0-9A-Fa-f]{2}|[^\s%<>\"'])*(?:%[0-9A-Fa-f]{2}(?:[^\s%<>\"']*)){3,}")
_UESC = re.compile(r"(?:\\u[0-9A-Fa-f]{4}){4,}")
_BIN = re.compile(r"(?<![01])(?:[01]{8}[ \n]?){4,}")
_ENTITY = re.compile(r"(?:&#(?:x[0-9A-Fa-f]{1,6}|\d{1,7});){4,}")
_DATA_URL = re.compile(r"(?i)data:[\w/+.-]*(?:;[\w=.-]+)*;base64,([A-Za-z0-9+/=_-]{8,})")
_SPACED = re.compile(r"\b(?:\w ){4,}\w\b")
_LEET_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[013457])[a-z013457@$]{3,}\b", re.IGNORECASE)
_REVERSED_HINTS = (" eht ", " dna ", " ot ", "snoitcurtsni", "erongi", " ruoy ", " fo ")
_MORSE = re.compile(r"^[\s.\-/]+$")
_MORSE_RUN = re.compile(r"(?:[.-]{1,6}(?: / | |/)){8,}[.-]{1,6}")
_ROT13_HINT = re.compile(
    r"\b(?:vtaber|qvfertneq|sbetrg|vafgehpgvbaf?|cerivbhf|cebzcg|flfgrz|cnffjbeq|nffvfgnag|erirny)\b"
)
_A85 = re.compile(r"<~[!-u\s]{10,}~>")
_B85 = re.compile(r"(?<![0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-])[0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-]{30,}")
_MORSE_TABLE = {
    ".-": "a",
    "-...": "b",
    "-.-.": "c",
    "-..": "d",
    ".": "e",
    "..-.": "f",
    "--.": "g",
    "....": "h",
    "..": "i",
    ".---": "j",
    "-.-": "k",
    ".-..": "l",
    "--": "m",
    "-.": "n",
    "---": "o",
    ".--.": "p",
    "--.-": "q",
    ".-.": "r",
    "...": "s",
    "-": "t",
    "..-": "u",
    "...-": "v",
    ".--": "w",
    "-..-": "x",
    "-.--": "y",
    "--..": "z",
    "-----": "0",
    ".----": "1",
    "..---": "2",
    "...--": "3",
    "....-": "4",
    ".....": "5",
    "-....": "6",
    "--...": "7",
    "---..": "8",
    "----.": "9",
    ".-.-.-": ".",
    "--..--": ",",
    ".--.-.": "@",
    "-....-": "-",
}
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})


@dataclass(frozen=True, slots=True)
class Decoded:
    start: int
    end: int
    text: str
    how: str


def readable(data: bytes) -> str | None:
    """``data`` as text if it is mostly printable natural text, else ``None``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 4:
        return None
    printable = sum(c.isprintable() or c in "\n\r\t" for c in text)
    wordish = sum(c.isalpha() or c == " " for c in text)
    if printable / len(text) < 0.95 or wordish / len(text) < 0.6 or " " not in text.strip():
        return None
    return text


def _b64(token: str) -> bytes | None:
    body = token.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in body or "_" in body:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _a85(token: str) -> bytes | None:
    try:
        return base64.a85decode(token.encode("ascii"), adobe=True, ignorechars=b" \t\n\r\x0b")
    except (ValueError, binascii.Error):
        return None


def _b85(token: str) -> bytes | None:
    for decode in (
        (base64.b85decode, base64.z85decode) if hasattr(base64, "z85decode") else (base64.b85decode,)
    ):
        try:
            return decode(token.encode("ascii"))
        except (ValueError, binascii.Error):
            continue
    return None


def _b32(token: str) -> bytes | None:
    body = token.rstrip("=")
    try:
        return base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None


def _hex(token: str) -> bytes | None:
    try:
        return bytes.fromhex(re.sub(r"[^0-9A-Fa-f]", "", token))
    except ValueError:
        return None


def _binary(token: str) -> bytes:
    groups = token.split()
    return bytes(int(g, 2) for g in groups if len(g) == 8)


def find_encoded(text: str, min_length: int, budget: int) -> list[Decoded]:
    """Readable text hidden in encoded substrings of ``text``."""
    found: list[Decoded] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, data: bytes | str | None, how: str) -> None:
        nonlocal budget
        if data is None or budget <= 0 or any(s <= start < e for s, e in taken):
            return
        decoded = readable(data) if isinstance(data, bytes) else data
        if decoded is None or decoded == text[start:end]:
            return
        decoded = decoded[:budget]
        budget -= len(decoded)
        taken.append((start, end))
        found.append(Decoded(start, end, decoded, how))

    if "data:" in text or "DATA:" in text:
        for m in _DATA_URL.finditer(text):
            add(m.start(), m.end(), _b64(m.group(1)), "base64 data: URL")
    if "\\x" in text:
        for m in _HEX_ESC.finditer(text):
            add(m.start(), m.end(), _hex(m.group().replace("\\x", "")), "\\x escapes")
    if "\\u" in text:
        for m in _UESC.finditer(text):
            add(m.start(), m.end(), codecs.decode(m.group(), "unicode_escape"), "\\u escapes")
    if "%" in text:
        for m in _PCT.finditer(text):
            add(m.start(), m.end(), unquote(m.group()), "URL encoding")
    if "&#" in text:
        for m in _ENTITY.finditer(text):
            add(m.start(), m.end(), html.unescape(m.group()), "HTML entities")
    if "<~" in text:
        for m in _A85.finditer(text):
            add(m.start(), m.end(), _a85(m.group()), "Ascii85")
    for m in _B85.finditer(text):
        token = m.group()
        if not token.isalnum() and sum(not c.isalnum() for c in token) * 10 >= len(token):
            add(m.start(), m.end(), _b85(token), "Base85")
    for m in _HEX.finditer(text):
        if len(m.group().strip()) >= min_length:
            add(m.start(), m.end(), _hex(m.group()), "hex")
    for m in _BIN.finditer(text):
        add(m.start(), m.end(), _binary(m.group()), "binary")
    for m in _B32.finditer(text):
        if len(m.group()) >= min_length:
            add(m.start(), m.end(), _b32(m.group()), "base32")
    for m in _B64.finditer(text):
        token = m.group()
        if len(token) >= min_length and not token.isalpha() and not token.isdigit():
            add(m.start(), m.end(), _b64(token), "base64")
    return found


def _morse(text: str) -> str:
    words = []
    for word in text.strip().split("/"):
        words.append("".join(_MORSE_TABLE.get(code, "?") for code in word.split()))
    return " ".join(words)


def transforms(text: str, lowered: str) -> list[tuple[str, str]]:
    """Whole-text de-obfuscations worth re-scanning: (text, how)."""
    out: list[tuple[str, str]] = []
    if "rot13" in lowered or "rot-13" in lowered or "rot 13" in lowered or _ROT13_HINT.search(lowered):
        out.append((codecs.decode(text, "rot13"), "ROT13"))
    if sum(h in lowered for h in _REVERSED_HINTS) >= 2:
        out.append((text[::-1], "reversed text"))
    if len(_LEET_WORD.findall(text)) >= 3:
        out.append((text.translate(_LEET), "leetspeak"))
    if _SPACED.search(text):
        out.append((_SPACED.sub(lambda m: m.group().replace(" ", ""), text), "spaced letters"))
    if len(text) >= 20 and _MORSE.match(text) and text.count(".") + text.count("-") > len(text) / 3:
        out.append((_morse(text), "Morse code"))
    elif "-" in text and "." in text:
        runs = [_morse(m.group()) for m in _MORSE_RUN.finditer(text)]
        if runs:
            out.append((" ".join(runs), "Morse code"))
    return out
