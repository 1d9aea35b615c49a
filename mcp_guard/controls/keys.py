"""Which calls a control applies to, and which counter a call lands in.

A control selects calls by tool and upstream globs and an optional principal scope,
then splits its counters by *dimensions* (``per: [agent, team]``). A dimension with
several values (a principal in two teams) yields one key per value; the call must be
within limits under every key. A principal without a value for a dimension (no agent,
no team) shares the key with the empty value. Principal dimensions of a principal with a
tenant are counted within that tenant (:func:`counter_keys`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import product
from typing import Literal

from mcp_guard.principal import Principal, escape_key_part

Dimension = Literal["global", "user", "agent", "role", "team", "tenant", "upstream", "tool"]

GlobMatcher = Callable[[str], bool]
_PRINCIPAL_DIMS = frozenset({"user", "agent", "role", "team"})


def glob_matcher(patterns: Iterable[str]) -> GlobMatcher:
    """One compiled matcher for a list of shell-style globs (``*``, ``?``, ``[..]``)."""
    pats = tuple(patterns)
    if "*" in pats:
        return _always
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in pats) or "(?!)")

    def match(name: str) -> bool:
        return regex.match(name) is not None

    return match


def _always(name: str) -> bool:
    return True


def specificity(patterns: Sequence[str]) -> int:
    """How specific a glob list is: the literal characters of its most specific glob."""
    return max((len(p) - sum(p.count(c) for c in "*?[]") for p in patterns), default=0)


def _escape(value: str) -> str:
    return escape_key_part(value, "|=")


def _values(dim: Dimension, principal: Principal, upstream: str, tool: str) -> Sequence[str]:
    if dim == "agent":
        return (principal.agent or "",)
    if dim == "user":
        return (principal.user,)
    if dim == "team":
        return sorted(principal.teams) or ("",)
    if dim == "role":
        return sorted(principal.roles) or ("",)
    if dim == "tenant":
        return (principal.tenant or "",)
    if dim == "tool":
        return (tool,)
    if dim == "upstream":
        return (upstream,)
    return ("",)


def counter_keys(
    control_id: str, dims: Sequence[Dimension], principal: Principal, upstream: str, tool: str
) -> list[str]:
    """The counter keys a call lands in, like ``payments-per-agent|agent=bot-1``.

    Values are escaped so no principal name can forge another principal's key;
    :func:`describe` turns a key back into words for messages. Principal dimensions
    (user, agent, role, team) count within the principal's tenant: for a principal with
    a tenant, ``per: [user]`` counts as ``per: [user, tenant]``, so a user name, agent,
    role or team in one tenant never shares a counter with the same name in another.
    """
    if principal.tenant is not None and "tenant" not in dims and not _PRINCIPAL_DIMS.isdisjoint(dims):
        dims = (*dims, "tenant")
    if len(dims) == 1:
        dim = dims[0]
        if dim == "global":
            return [f"{control_id}|"]
        if dim == "agent":
            return [f"{control_id}|agent={_escape(principal.agent or '')}"]
        if dim == "user":
            return [f"{control_id}|user={_escape(principal.user)}"]
    parts = [
        [f"{d}={_escape(v)}" for v in _values(d, principal, upstream, tool)] for d in dims if d != "global"
    ]
    if not parts:
        return [f"{control_id}|"]
    return [control_id + "|" + "|".join(combo) for combo in product(*parts)]


def describe(key: str) -> str:
    """``"payments|agent=bot-1|team="`` → ``"agent bot-1, team (none)"``."""
    _, _, rest = key.partition("|")
    if not rest:
        return "everyone"
    words = []
    for part in rest.split("|"):
        dim, _, value = part.partition("=")
        value = value.replace("%7C", "|").replace("%3D", "=").replace("%25", "%")
        words.append(f"{dim} {value or '(none)'}")
    return ", ".join(words)
