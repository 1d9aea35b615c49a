"""Principal: who is calling. Built from a verified token, never from client claims."""

from __future__ import annotations

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

    @property
    def key(self) -> str:
        """A stable identifier for sessions, counters and audit (user plus agent)."""
        return f"{self.user}|{self.agent or ''}"


LOCAL_PRINCIPAL = Principal(user="local", agent="local")
