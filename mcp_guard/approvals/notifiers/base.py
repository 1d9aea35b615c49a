"""What a notifier is, how it posts, and the short summaries every channel shows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import httpx2

from mcp_guard.approvals.models import ApprovalRequest
from mcp_guard.errors import GuardError

MAX_ARGUMENTS = 8
MAX_VALUE_CHARS = 120
MAX_FINDINGS = 5


class DeliveryError(GuardError):
    """A notification could not be delivered (network error or non-2xx answer); it will be retried."""


class Notifier(Protocol):
    """Tells approvers about a new request on one channel."""

    name: str

    async def send(self, request: ApprovalRequest, client: httpx2.AsyncClient) -> None:
        """Deliver the notification once.

        Raises:
            DeliveryError: it was not delivered.
        """
        ...


async def post(
    client: httpx2.AsyncClient, url: str, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    """POST ``body`` as JSON to ``url``.

    Raises:
        DeliveryError: the connection failed or the answer was not 2xx.
    """
    all_headers = {"content-type": "application/json", **(headers or {})}
    try:
        response = await client.post(url, content=body, headers=all_headers)
    except httpx2.HTTPError as exc:
        raise DeliveryError(f"POST {_safe(url)} failed: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"POST {_safe(url)} answered {response.status_code}: {response.text[:200]}")


def _safe(url: str) -> str:
    """``url`` without its path and query (webhook URLs embed their secret there)."""
    parsed = httpx2.URL(url)
    return f"{parsed.scheme}://{parsed.host}"


def links(request: ApprovalRequest, public_url: str | None) -> dict[str, str]:
    """Admin API links for ``request``: ``view`` (GET), ``approve`` and ``reject`` (POST)."""
    if not public_url:
        return {}
    base = f"{public_url.rstrip('/')}/{request.id}"
    return {"view": base, "approve": f"{base}/approve", "reject": f"{base}/reject"}


def requester(request: ApprovalRequest) -> str:
    p = request.principal
    return f"{p.user} (agent {p.agent})" if p.agent else p.user


def short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def key_arguments(request: ApprovalRequest) -> list[tuple[str, str]]:
    """The first arguments (already redacted by the gateway), each value shortened."""
    items = list(request.context.arguments.items())
    out = [(k, short(v)) for k, v in items[:MAX_ARGUMENTS]]
    if len(items) > MAX_ARGUMENTS:
        out.append(("…", f"{len(items) - MAX_ARGUMENTS} more"))
    return out


def finding_lines(request: ApprovalRequest) -> list[str]:
    """One line per finding (type, severity, where), at most ``MAX_FINDINGS``."""
    lines = []
    findings = request.context.findings
    for f in findings[:MAX_FINDINGS]:
        kind = f.get("type") or f.get("kind") or f.get("detector") or "finding"
        parts = [str(kind)]
        if f.get("severity"):
            parts.append(f"({f['severity']})")
        where = f.get("path") or f.get("field") or f.get("location")
        if where:
            parts.append(f"at {where}")
        lines.append(" ".join(parts))
    if len(findings) > MAX_FINDINGS:
        lines.append(f"… {len(findings) - MAX_FINDINGS} more")
    return lines


def risk_text(request: ApprovalRequest) -> str:
    risk = request.context.risk
    return "n/a" if risk is None else f"{risk:.0f}/100"
