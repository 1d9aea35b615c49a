"""Credentials: cloud and SaaS API keys, private keys, JWTs, passwords in URLs, context secrets.

Hand-written, anchored regexes behind literal prefilters. ``detect-secrets`` 1.5.0 was
measured at ~8.5 ms per 4 KB line (40x the latency budget) and needs its own settings
context, so it is not used.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from mcp_guard.findings import Severity
from mcp_guard.inspection.hits import Hit, contains_any, shannon_entropy

_C = Severity.CRITICAL
_H = Severity.HIGH
_M = Severity.MEDIUM

# (type, severity, literal prefilter, pattern, detail)
_KEYED: tuple[tuple[str, Severity, tuple[str, ...], re.Pattern[str], str], ...] = (
    (
        "AWS_ACCESS_KEY",
        _H,
        ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "A3T"),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
        "AWS access key id",
    ),
    ("GCP_API_KEY", _H, ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])"), "Google API key"),
    (
        "GITHUB_TOKEN",
        _C,
        ("gh", "github_pat_"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
        "GitHub token",
    ),
    (
        "GITLAB_TOKEN",
        _C,
        ("glpat-",),
        re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
        "GitLab personal access token",
    ),
    ("SLACK_TOKEN", _H, ("xox",), re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), "Slack token"),
    (
        "SLACK_WEBHOOK",
        _M,
        ("hooks.slack.com",),
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+"),
        "Slack incoming webhook URL",
    ),
    (
        "STRIPE_KEY",
        _C,
        ("_live_",),
        re.compile(r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}\b"),
        "Stripe live secret key",
    ),
    (
        "STRIPE_KEY",
        _M,
        ("_test_",),
        re.compile(r"\b(?:sk|rk)_test_[0-9A-Za-z]{20,}\b"),
        "Stripe test secret key",
    ),
    (
        "SENDGRID_API_KEY",
        _H,
        ("SG.",),
        re.compile(r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"),
        "SendGrid API key",
    ),
    (
        "ANTHROPIC_API_KEY",
        _C,
        ("sk-ant-",),
        re.compile(r"\bsk-ant-(?:[a-z]+\d\d-)?[A-Za-z0-9_-]{32,}"),
        "Anthropic API key",
    ),
    (
        "OPENAI_API_KEY",
        _C,
        ("sk-",),
        re.compile(
            r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Z])[A-Za-z0-9_"
            r"-]{20,}"
        ),
        "OpenAI-style API key",
    ),
)

_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:.|\n){0,12000}?"
    r"(?:-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----|$)"
)
_JWT = re.compile(r"\b(eyJ[A-Za-z0-9_-]{5,})\.([A-Za-z0-9_-]{5,})\.([A-Za-z0-9_-]*)")
_CONN = re.compile(
    r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'\"<>]{1,128}:([^\s@/'\"<>]{1,256})@[^\s/'\"<>]+"
)
_AWS_SECRET_CTX = re.compile(
    r"(?i)aws.{0,24}?(?:secret|sk\b).{0,24}?[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_B64_40 = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_GCP_SA = re.compile(r"\"type\"\s*:\s*\"service_account\"")
_GCP_SA_KEY = re.compile(r"\"private_key(?:_id)?\"\s*:\s*\"([^\"]{16,})\"")
_GENERIC = re.compile(
    r"(?i)(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|credential|auth[_-]?key|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|session[_-]?id|auth)[\w.-]{0,20}[\"']?\s*(?:[:=]|=>|:=)\s*[\"']?"
    r"([A-Za-z0-9+/_.~!@#$%^&*=-]{8,200})"
)
_BEARER = re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/-]{20,}=*)")
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|<[^>]*>|\$\{?[\w.]+\}?|%\w+%|\{\{.*\}\}|changeme|redacted|null|none|true|false|req"
    r"uired|optional|string)$"
)
_GENERIC_GATE = ("key", "token", "secret", "pass", "pwd", "credential", "auth", "bearer", "session")
_PASSWORDISH = re.compile(r"(?i)pass|pwd")


def _jwt_ok(header_b64: str) -> bool:
    try:
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def _looks_random(value: str, password: bool) -> bool:
    if _PLACEHOLDER.match(value):
        return False
    classes = sum(
        (any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value))
    ) + any(not c.isalnum() for c in value)
    if password:
        return len(value) >= 6 and classes >= 2
    if len(value) < 16 or classes < 2:
        return False
    return shannon_entropy(value) >= (3.0 if len(value) < 24 else 3.5)


def detect_secrets(text: str) -> list[Hit]:
    """Credentials in ``text``; spans cover the secret value itself."""
    hits: list[Hit] = []
    for kind, severity, gate, pattern, detail in _KEYED:
        if contains_any(text, gate):
            hits += [
                Hit(kind, "secret", severity, m.start(), m.end(), detail) for m in pattern.finditer(text)
            ]
    if "PRIVATE KEY" in text:
        hits += [
            Hit("PRIVATE_KEY", "secret", _C, m.start(), m.end(), "PEM private key block")
            for m in _PEM.finditer(text)
        ]
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            if _jwt_ok(m.group(1)):
                hits.append(Hit("JWT", "secret", _H, m.start(), m.end(), "JSON Web Token"))
    if "://" in text:
        for m in _CONN.finditer(text):
            if not _PLACEHOLDER.match(m.group(1)):
                hits.append(
                    Hit("CONNECTION_STRING_PASSWORD", "secret", _H, m.start(1), m.end(1), "password in URL")
                )
    if "service_account" in text and _GCP_SA.search(text):
        for m in _GCP_SA_KEY.finditer(text):
            hits.append(
                Hit("GCP_SERVICE_ACCOUNT_KEY", "secret", _C, m.start(1), m.end(1), "GCP service-account key")
            )
    hits += _aws_secret(text, hits)
    lowered = text.lower()
    if contains_any(lowered, _GENERIC_GATE):
        hits += _generic(text)
    return hits


def _aws_secret(text: str, found: list[Hit]) -> list[Hit]:
    hits = []
    if "aws" in text.lower():
        for m in _AWS_SECRET_CTX.finditer(text):
            hits.append(Hit("AWS_SECRET_KEY", "secret", _C, m.start(1), m.end(1), "AWS secret access key"))
    key_ids = [h for h in found if h.type == "AWS_ACCESS_KEY"]
    for key in key_ids:
        assert key.start is not None and key.end is not None
        lo, hi = max(0, key.start - 300), min(len(text), key.end + 300)
        for m in _B64_40.finditer(text, lo, hi):
            value = m.group()
            if (
                any(c.isdigit() for c in value)
                and any(c.islower() for c in value)
                and any(c.isupper() for c in value)
            ):
                hits.append(Hit("AWS_SECRET_KEY", "secret", _C, m.start(), m.end(), "AWS secret access key"))
    return hits


def _generic(text: str) -> list[Hit]:
    hits = []
    for m in _GENERIC.finditer(text):
        value = m.group(1).rstrip("\"',;")
        if _looks_random(value, bool(_PASSWORDISH.search(m.group()))):
            severity = _M
            hits.append(
                Hit(
                    "GENERIC_SECRET",
                    "secret",
                    severity,
                    m.start(1),
                    m.start(1) + len(value),
                    "credential in context",
                )
            )
    for m in _BEARER.finditer(text):
        if _looks_random(m.group(1), False):
            hits.append(Hit("GENERIC_SECRET", "secret", _M, m.start(1), m.end(1), "bearer token"))
    return hits
