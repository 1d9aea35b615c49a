"""Server-side request forgery: URLs aimed at internal, loopback, link-local or metadata hosts.

Hosts are resolved *syntactically* (no DNS): dotted, decimal, octal and hex IPv4 forms
(``socket.inet_aton`` rules), IPv6 including IPv4-mapped/compatible forms, well-known
internal names, and wildcard-DNS names that embed an IP (``127.0.0.1.nip.io``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import unquote, urlsplit

from mcp_guard.findings import Severity
from mcp_guard.inspection.hits import Hit

_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,15}://[^\s'\"<>`]+")
_METADATA_HOSTS = frozenset(
    {
        "169.254.169.254",
        "metadata.google.internal",
        "metadata",
        "fd00:ec2::254",
        "instance-data",
        "instance-data.ec2.internal",
        "100.100.100.200",
        "metadata.azure.internal",
        "169.254.170.2",
    }
)
_INTERNAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "0",
        "broadcasthost",
        "kubernetes.default",
        "localtest.me",
        "lvh.me",
        "vcap.me",
        "lacolhost.com",
        "spoofed.burpcollaborator.net",
    }
)
_INTERNAL_SUFFIXES = (
    ".localhost",
    ".internal",
    ".local",
    ".localdomain",
    ".intranet",
    ".corp",
    ".lan",
    ".home.arpa",
    ".svc",
    ".cluster.local",
    ".localtest.me",
    ".lvh.me",
    ".vcap.me",
)
_EMBEDDED_IP = re.compile(
    r"^(\d{1,3}(?:[.-]\d{1,3}){3})\.(?:nip\.io|xip\.io|sslip\.io|localtest\.me|traefik\.me)$"
)
_LOCAL_SCHEMES = frozenset({"file", "gopher", "dict", "jar", "netdoc", "php", "expect", "phar"})
_METADATA_PATHS = re.compile(
    r"(?i)169\.254\.169\.254|metadata\.google\.internal|fd00:ec2::254|/latest/meta-data|computemetadata/v1|"
    r"/metadata/instance\b|/latest/api/token"
)
_NUMERIC_HOST = re.compile(r"(?i)^(?:0x[0-9a-f]+|\d+)(?:\.(?:0x[0-9a-f]+|\d+)){0,3}$")


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _internal_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is None and ip.packed[:12] == bytes(12) and int(ip) > 1:
            mapped = ipaddress.IPv4Address(ip.packed[12:])  # IPv4-compatible ::a.b.c.d
        if mapped is not None:
            return _internal_ip(mapped)
    if str(ip) in _METADATA_HOSTS:
        return "cloud metadata endpoint"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_private:
        return "private address"
    if ip.is_unspecified or ip.is_reserved or ip.is_multicast:
        return "reserved address"
    return None


def classify_host(host: str) -> str | None:
    """Why ``host`` is internal, or ``None`` when it looks public."""
    host = unquote(host).lower().rstrip(".")
    if host in _METADATA_HOSTS:
        return "cloud metadata endpoint"
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES):
        return "internal host name"
    ip = _parse_ip(host)
    if ip is None:
        embedded = _EMBEDDED_IP.match(host)
        if embedded is None:
            return None
        ip = _parse_ip(embedded.group(1).replace("-", "."))
        if ip is None:
            return None
    return _internal_ip(ip)


def detect_ssrf(text: str) -> list[Hit]:
    """URLs in ``text`` whose host is internal, plus bare metadata-endpoint references."""
    hits: list[Hit] = []
    if "://" in text:
        for m in _URL.finditer(text):
            try:
                parts = urlsplit(m.group())
                host = parts.hostname or ""
            except ValueError:
                continue
            scheme = parts.scheme.lower()
            if scheme in _LOCAL_SCHEMES:
                reason: str | None = f"{scheme}: URL scheme"
            else:
                reason = classify_host(host) if host else None
            if reason is None:
                continue
            severity = Severity.CRITICAL if reason == "cloud metadata endpoint" else Severity.HIGH
            hits.append(Hit("SSRF", "attack", severity, m.start(), m.end(), f"URL targets {reason}"))
    if not hits:
        m2 = _METADATA_PATHS.search(text)
        if m2 is not None:
            hits.append(
                Hit("SSRF", "attack", Severity.CRITICAL, m2.start(), m2.end(), "cloud metadata endpoint")
            )
    return hits
