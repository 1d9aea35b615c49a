"""The decision stages of the gateway core: route, validate, decide."""

from __future__ import annotations

import json
from collections.abc import Callable

from mcp import types

from mcp_guard.decision import Decision, Verdict
from mcp_guard.errors import UnknownToolError
from mcp_guard.json_schemas import InvalidSchemaError, ValidatorCache, first_error
from mcp_guard.pipeline.access import AccessPolicy
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.outcomes import blocked
from mcp_guard.policy import ToolInfo
from mcp_guard.upstreams.catalog import Route

ToolLookup = Callable[[str], tuple[Route, types.Tool, ToolInfo] | None]

_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""What ``json.dumps(..., ensure_ascii=False, separators=(",", ":"), allow_nan=False)`` uses,
built once instead of on every call (``json.dumps`` builds a new encoder when given options)."""


class RouteStage:
    """Namespaced tool → upstream and original name. Hidden tools do not exist."""

    name = "route"

    def __init__(self, lookup: ToolLookup, policy: Callable[[], AccessPolicy]) -> None:
        self._lookup = lookup
        self._policy = policy

    async def __call__(self, call: ToolCall) -> Verdict | None:
        found = self._lookup(call.tool)
        if found is None or not self._policy().visible(call.principal, found[2]):
            raise UnknownToolError(call.tool)
        call.route, call.definition, call.info = found
        return None


class ValidateStage:
    """Arguments must fit the tool's ``inputSchema`` and the size limit."""

    name = "validate"

    def __init__(self, max_argument_bytes: int) -> None:
        self.max_argument_bytes = max_argument_bytes
        self._validators = ValidatorCache()

    async def __call__(self, call: ToolCall) -> Verdict | None:
        try:
            text = _COMPACT_JSON.encode(call.arguments)
        except ValueError:  # JSON has no NaN or Infinity; no upstream could read them either
            return blocked("invalid-arguments", "arguments hold NaN or Infinity, which JSON cannot carry")
        size = call.argument_bytes = len(text.encode())
        if size > self.max_argument_bytes:
            return blocked(
                "argument-size", f"arguments are {size} bytes; the limit is {self.max_argument_bytes}"
            )
        assert call.definition is not None
        try:
            validator = self._validators.get(call.tool, call.definition.input_schema)
        except InvalidSchemaError as exc:
            return blocked("input-schema", f"the tool's inputSchema cannot be used: {exc}")
        error = first_error(validator, call.arguments)
        if error is not None:
            where, message = error
            return blocked("input-schema", f"invalid arguments at {where or '<arguments>'}: {message}")
        return None


class DecideStage:
    """The policy decision (the same decision point that filters ``tools/list``).

    A BLOCK stops the chain here; APPROVAL_REQUIRED goes on to the limits and approval stages.
    """

    name = "decide"

    def __init__(self, policy: Callable[[], AccessPolicy]) -> None:
        self._policy = policy

    async def __call__(self, call: ToolCall) -> Verdict | None:
        assert call.info is not None
        call.verdict = await self._policy().decide(call, call.info)
        return call.verdict if call.verdict.decision is Decision.BLOCK else None
