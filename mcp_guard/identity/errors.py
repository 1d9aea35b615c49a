"""The one error identity code raises on purpose: a token was not accepted."""

from __future__ import annotations

from mcp_guard.errors import GuardError

INVALID_TOKEN = "invalid_token"
INVALID_REQUEST = "invalid_request"
INSUFFICIENT_SCOPE = "insufficient_scope"


class AuthError(GuardError):
    """A caller could not be authenticated (or lacks a required scope).

    ``code`` is an RFC 6750 error code (``invalid_token``, ``invalid_request``,
    ``insufficient_scope``). ``description`` is safe to show to the client: it
    says what is wrong with the token, never which keys exist, what they hold or
    how the gateway is built. ``status`` is the HTTP status to answer with.
    """

    def __init__(self, code: str, description: str, *, status: int = 401) -> None:
        self.code = code
        self.description = description
        self.status = status
        super().__init__(description)

    def __repr__(self) -> str:
        return f"AuthError(code={self.code!r}, description={self.description!r}, status={self.status})"
