"""The exception hierarchy. Messages name the file, line and key at fault."""

from __future__ import annotations


class GuardError(Exception):
    """Base class of every error mcp-guard raises on purpose."""


class ConfigError(GuardError):
    """A configuration or policy file is invalid.

    ``problems`` holds one ``file:line: message`` string per problem found, so a
    user sees every mistake at once instead of fixing them one by one.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UnknownToolError(GuardError):
    """A tool name that does not exist, or that the caller may not see (indistinguishable)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Unknown tool: {name}")


class UpstreamUnavailableError(GuardError):
    """The upstream that serves a tool is not connected right now."""

    def __init__(self, upstream: str, reason: str) -> None:
        self.upstream = upstream
        self.reason = reason
        super().__init__(f"upstream '{upstream}' is unavailable: {reason}")
