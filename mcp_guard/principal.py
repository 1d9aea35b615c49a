"""Principal: who is calling. Built from a verified token, never from client claims."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Principal(BaseModel):
    """The verified identity behind a connection.

    ``user`` comes from the token subject; ``agent`` names the AI agent acting for
    the user. Everything here is authoritative for authorisation; the client's
    self-declared ``clientInfo`` is kept elsewhere and never trusted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    agent: str | None = None
    roles: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    tenant: str | None = None
    scopes: frozenset[str] = frozenset()
    issuer: str | None = None

    @cached_property
    def key(self) -> str:
        """A stable identifier for sessions, approvals, baselines and audit (user, agent and
        tenant).

        ``user|agent``, or ``user|agent|tenant`` for a principal of a tenant, each part
        escaped by :func:`escape_key_part`, so no two principals share a key (user ``kim|x``
        is ``kim%7Cx|``, user ``kim`` with agent ``x|`` is ``kim|x%7C``, and ``kim`` of
        tenant ``acme`` is ``kim||acme``, not the ``kim|`` of another tenant). Names without
        ``|`` or ``%`` are kept as they are, so keys of principals without a tenant,
        already stored (approvals, risk baselines), stay valid.

        Built once per principal (a call reads it for each of its sessions and for its
        baseline); :meth:`model_copy` builds it anew for the copy.
        """
        key = f"{escape_key_part(self.user)}|{escape_key_part(self.agent or '')}"
        return key if self.tenant is None else f"{key}|{escape_key_part(self.tenant)}"

    @cached_property
    def audit_record(self) -> dict[str, Any]:
        """Who acted, as every audit entry names them.

        Built once per principal (each of its calls records it twice: decision and
        outcome) and shared by those records: never to be changed. :meth:`model_copy`
        builds it anew for the copy.
        """
        return {
            "user": self.user,
            "agent": self.agent,
            "roles": sorted(self.roles),
            "teams": sorted(self.teams),
            "tenant": self.tenant,
        }

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy (with ``update`` applied) whose :attr:`key` and :attr:`audit_record` are
        worked out from its own fields."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("key", None)
        copied.__dict__.pop("audit_record", None)
        return copied

    def same_identity(self, other: Principal) -> bool:
        """Whether ``other`` is the same person: the same user of the same tenant (its agent
        and current roles aside)."""
        return self.user == other.user and self.tenant == other.tenant


def escape_key_part(value: str, separators: str = "|") -> str:
    """``value`` made safe to join with ``separators``: ``%`` and each separator are
    percent-encoded (``%`` → ``%25``, ``|`` → ``%7C``, ``=`` → ``%3D``).

    Joining escaped parts is injective: no value can forge a separator. A value holding
    neither ``%`` nor a separator is returned unchanged.
    """
    if "%" not in value and not any(sep in value for sep in separators):
        return value
    escaped = value.replace("%", "%25")
    for sep in separators:
        escaped = escaped.replace(sep, f"%{ord(sep):02X}")
    return escaped


def principal_in(scope: Mapping[str, Any]) -> Principal | None:
    """The principal an authentication middleware placed in an HTTP request's ASGI scope
    (``scope["state"]["principal"]``), or ``None``."""
    state = scope.get("state")
    found = state.get("principal") if isinstance(state, dict) else None
    return found if isinstance(found, Principal) else None


LOCAL_PRINCIPAL = Principal(user="local", agent="local")
