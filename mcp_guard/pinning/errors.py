"""The errors the pinning package raises on purpose. Messages name the upstream and tool at fault."""

from __future__ import annotations

from mcp_guard.errors import GuardError


class PinningError(GuardError):
    """Base class of every pinning error."""


class PinStoreError(PinningError):
    """The pin database cannot be opened, or is not a pin database (or is from a newer mcp-guard)."""


class NothingPendingError(PinningError):
    """An operator tried to accept or reject a tool that has no pending definition."""

    def __init__(self, upstream: str, name: str) -> None:
        self.upstream = upstream
        self.name = name
        super().__init__(f"tool '{name}' of upstream '{upstream}' has no pending definition")


class PoisonedToolError(PinningError):
    """Accepting a definition with poisoning findings needs ``force``."""

    def __init__(self, upstream: str, name: str, count: int) -> None:
        self.upstream = upstream
        self.name = name
        super().__init__(
            f"tool '{name}' of upstream '{upstream}' has {count} poisoning finding(s); "
            "accepting it needs --force"
        )


class StalePendingError(PinningError):
    """The pending definition changed after the operator looked at it (the expected fingerprint differs)."""

    def __init__(self, upstream: str, name: str, expected: str, actual: str) -> None:
        self.upstream = upstream
        self.name = name
        super().__init__(
            f"tool '{name}' of upstream '{upstream}': the pending definition is {actual[:12]}, "
            f"not {expected[:12]}; review the diff again"
        )
