"""Mapping verified token claims onto a Principal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp_guard.identity.config import ClaimMapping
from mcp_guard.identity.errors import INVALID_TOKEN, AuthError
from mcp_guard.principal import Principal

_MISSING = object()
MAX_CLAIM_ITEMS = 256


def lookup(claims: Mapping[str, Any], name: str) -> Any:
    """The value of claim ``name``: a top-level claim, else a dotted path into objects.

    Returns ``None`` when absent.
    """
    value = claims.get(name, _MISSING)
    if value is not _MISSING:
        return value
    if "." not in name:
        return None
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _first(claims: Mapping[str, Any], names: list[str]) -> Any:
    for name in names:
        value = lookup(claims, name)
        if value is not None and value not in ("", []):
            return value
    return None


def _string(claims: Mapping[str, Any], names: list[str]) -> str | None:
    value = _first(claims, names)
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise AuthError(INVALID_TOKEN, f"token claim '{names[0]}' must be a string")


def _strings(claims: Mapping[str, Any], names: list[str]) -> frozenset[str]:
    value = _first(claims, names)
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items: list[Any] = value.split()
    elif isinstance(value, list):
        items = value
    else:
        raise AuthError(INVALID_TOKEN, f"token claim '{names[0]}' must be a string or a list of strings")
    if len(items) > MAX_CLAIM_ITEMS or not all(isinstance(item, str) for item in items):
        raise AuthError(INVALID_TOKEN, f"token claim '{names[0]}' must be a string or a list of strings")
    return frozenset(items)


def principal_from_claims(claims: Mapping[str, Any], mapping: ClaimMapping) -> Principal:
    """Build the Principal a verified token describes.

    Raises:
        AuthError: the user claim is missing or empty, or a mapped claim has the wrong type.
    """
    user = _string(claims, [mapping.user])
    if not user:
        raise AuthError(INVALID_TOKEN, f"token has no '{mapping.user}' claim naming the user")
    issuer = claims.get("iss")
    return Principal(
        user=user,
        agent=_string(claims, mapping.agent),
        roles=_strings(claims, mapping.roles),
        teams=_strings(claims, mapping.teams),
        tenant=_string(claims, mapping.tenant),
        scopes=_strings(claims, mapping.scopes),
        issuer=issuer if isinstance(issuer, str) else None,
    )
