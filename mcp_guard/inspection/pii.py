"""Personal data: SSNs, payment cards, IBANs, e-mail addresses, phone numbers, IP addresses.

Every candidate is validated (area/group/serial rules, Luhn + issuer ranges, mod-97 +
country length, ``phonenumbers``, ``ipaddress``), so look-alikes that fail a checksum are
not findings. Names (PERSON) are not detected: that needs NER.
"""

from __future__ import annotations

import ipaddress
import re

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.us import ssn as std_ssn

from mcp_guard.findings import Severity
from mcp_guard.inspection.hits import Hit

_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_SSN_BARE = re.compile(
    r"(?i)\b(?:ssn|social security(?: number| no\.?)?|soc\. ?sec\.?)\D{0,20}?(?<!\d)(\d{9})(?!\d)"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
EMAIL_DETAIL = "e-mail address"
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A"
    r"-Za-z]{2,24}\b"
)
_PHONE = re.compile(
    r"(?<![\w+/.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?![\w/-]|\.\d)"
    r"|(?<![\w+])\+\d{8,15}\b"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:]{2,39}(?:\.\d{1,3}){0,3}(?![\w:])"
)
_FILE_TLDS = frozenset(
    [
        "png",
        "jpg",
        "jpeg",
        "gif",
        "webp",
        "svg",
        "css",
        "js",
        "ts",
        "map",
        "json",
        "txt",
        "pdf",
        "zip",
        "gz",
        "html",
        "htm",
        "md",
        "py",
        "ico",
        "bmp",
        "tif",
        "tiff",
        "mp4",
    ]
)
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|\bversion ?|\bver\.? ?)$")
_NANP = re.compile(r"[2-9]\d{2}[2-9]\d{6}")

# (prefix ranges, allowed lengths) per issuer
_ISSUERS: tuple[tuple[tuple[tuple[int, int], ...], frozenset[int]], ...] = (
    (((4, 4),), frozenset({13, 16, 19})),  # Visa
    (((51, 55), (2221, 2720)), frozenset({16})),  # Mastercard
    (((34, 34), (37, 37)), frozenset({15})),  # Amex
    (((6011, 6011), (644, 649), (65, 65)), frozenset({16, 17, 18, 19})),  # Discover
    (((3528, 3589),), frozenset({16, 17, 18, 19})),  # JCB
    (((300, 305), (36, 36), (38, 39)), frozenset({14, 15, 16, 17, 18, 19})),  # Diners
    (((62, 62),), frozenset({16, 17, 18, 19})),  # UnionPay
    (((50, 50), (56, 58), (63, 63), (67, 67)), frozenset({12, 13, 14, 15, 16, 17, 18, 19})),  # Maestro
)


def _issuer_ok(digits: str) -> bool:
    for ranges, lengths in _ISSUERS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            width = len(str(low))
            if low <= int(digits[:width]) <= high:
                return True
    return False


def _card_grouping_ok(raw: str) -> bool:
    seps = {c for c in raw if not c.isdigit()}
    if not seps:
        return True
    if len(seps) > 1:
        return False
    groups = [len(g) for g in re.split(r"[ -]", raw)]
    return all(3 <= g <= 6 for g in groups)


def _cards(text: str) -> list[Hit]:
    hits = []
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if _card_grouping_ok(raw) and _issuer_ok(digits) and luhn.is_valid(digits):
            hits.append(
                Hit(
                    "CREDIT_CARD",
                    "pii",
                    Severity.HIGH,
                    m.start(),
                    m.end(),
                    "payment card number (Luhn-valid)",
                )
            )
    return hits


def _ssns(text: str) -> list[Hit]:
    hits = []
    for m in _SSN.finditer(text):
        if std_ssn.is_valid(m.group(1) + m.group(3) + m.group(4)):
            hits.append(Hit("US_SSN", "pii", Severity.HIGH, m.start(), m.end(), "US social security number"))
    for m in _SSN_BARE.finditer(text):
        if std_ssn.is_valid(m.group(1)):
            hits.append(
                Hit("US_SSN", "pii", Severity.HIGH, m.start(1), m.end(1), "US social security number")
            )
    return hits


def _ibans(text: str) -> list[Hit]:
    hits = []
    for m in _IBAN.finditer(text):
        raw = m.group()
        # the greedy match may swallow a following token: try the longest valid prefix
        positions = [i for i, c in enumerate(raw) if c != " "]
        compact = raw.replace(" ", "")
        for length in range(len(compact), 14, -1):
            if std_iban.is_valid(compact[:length], check_country=False):
                end = m.start() + positions[length - 1] + 1
                hits.append(Hit("IBAN", "pii", Severity.HIGH, m.start(), end, "IBAN (mod-97 valid)"))
                break
    return hits


def _email_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _EMAIL.finditer(text) if m.group().rsplit(".", 1)[1].lower() not in _FILE_TLDS]


def _email_hit(start: int, end: int) -> Hit:
    return Hit("EMAIL", "pii", Severity.LOW, start, end, EMAIL_DETAIL)


def _emails(text: str) -> list[Hit]:
    return [_email_hit(start, end) for start, end in _email_spans(text)]


_HEX_PAIRS = re.compile(r"\d{2}(?: \d{2}){3,}")
_ISO_DATE = re.compile(r"(?:19|20)\d{2}-[01]\d-[0-3]\d\b")


def _phone_valid(raw: str) -> bool:
    if _HEX_PAIRS.fullmatch(raw) or _ISO_DATE.match(raw):  # hex dumps and dates are not dialable numbers
        return False
    digits = re.sub(r"\D", "", raw)
    if len(digits) < 8 or len(digits) > 15:
        return False
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return False
    if phonenumbers.is_valid_number(number):
        return True
    if not phonenumbers.is_possible_number(number):
        return False
    national = str(number.national_number)
    if number.country_code == 1:
        # NANP structure: area and exchange codes start with 2-9, no N11 area codes
        return bool(_NANP.fullmatch(national)) and national[1:3] != "11"
    # other countries: an explicit +CC and separators make a possible number credible
    return raw.lstrip().startswith("+") and bool(re.search(r"[ .()-]", raw))


def _phones(text: str) -> list[Hit]:
    hits = []
    for m in _PHONE.finditer(text):
        raw = m.group()
        if _phone_valid(raw):
            hits.append(Hit("PHONE", "pii", Severity.LOW, m.start(), m.end(), "phone number"))
    return hits


def _ips(text: str) -> list[Hit]:
    hits = []
    if "." in text:
        for m in _IPV4.finditer(text):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if _VERSION_BEFORE.search(text, max(0, m.start() - 9), m.start()):
                continue
            hits.append(Hit("IP_ADDRESS", "pii", Severity.LOW, m.start(), m.end(), "IPv4 address"))
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            raw = m.group()
            if sum(c.isalnum() for c in raw) < 4:
                continue
            try:
                ipaddress.IPv6Address(raw)
            except ValueError:
                continue
            hits.append(Hit("IP_ADDRESS", "pii", Severity.LOW, m.start(), m.end(), "IPv6 address"))
    return hits


_HAS_DIGIT_RUN = re.compile(r"\d{2}")


_ALL_KINDS = frozenset({"email", "num", "iban", "ip"})
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%+-")


def email_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Where the e-mail addresses are, from exact anchor matches (``anchors`` finds whole
    addresses): the spans of :func:`emails_at`, without a :class:`Hit` for each."""
    found = []
    for span in spans:
        start, end = span
        if start > 0 and text[start - 1] in _EMAIL_LOCAL:
            lo = max(0, start - 80)
            found += [(s + lo, e + lo) for s, e in _email_spans(text[lo : end + 1])]
        elif text[end - 4 : end].rpartition(".")[2].lower() not in _FILE_TLDS and not (
            end < len(text) and (text[end].isalnum() or text[end] == "_")
        ):
            found.append(span)
    return found


def emails_at(text: str, spans: list[tuple[int, int]]) -> list[Hit]:
    """E-mail findings from exact anchor matches (``anchors`` finds whole addresses)."""
    return [_email_hit(start, end) for start, end in email_spans(text, spans)]


def detect_pii(text: str, kinds: frozenset[str] = _ALL_KINDS) -> list[Hit]:
    """All validated PII in ``text`` (``kinds``: which of email, num, iban, ip to look for)."""
    hits: list[Hit] = []
    if "email" in kinds and "@" in text:
        hits += _emails(text)
    if _HAS_DIGIT_RUN.search(text) is None:
        return hits
    if "num" in kinds:
        hits += _ssns(text)
        hits += _cards(text)
        hits += _phones(text)
    if "iban" in kinds or "num" in kinds:
        hits += _ibans(text)
    if "ip" in kinds:
        hits += _ips(text)
    return hits
