"""The decision stages of the gateway core: route, validate, decide."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

from mcp_guard.decision import Decision, Verdict
from mcp_guard.errors import UnknownToolError
from mcp_guard.pipeline.access import AccessPolicy, ToolInfo
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.upstreams.catalog import Catalog


class RouteStage:
    """Namespaced tool → upstream and original name. Hidden tools do not exist."""

    name = "route"

    def __init__(
        self,
        catalog: Callable[[], Catalog],
        tool_info: Callable[[str], ToolInfo | None],
        policy: Callable[[], AccessPolicy],
    ) -> None:
        self._catalog = catalog
        self._tool_info = tool_info
        self._policy = policy

    async def __call__(self, call: ToolCall) -> Verdict | None:
        entry = self._catalog().tools.get(call.tool)
        info = self._tool_info(call.tool)
        if entry is None or info is None or not self._policy().visible(call.principal, info):
            raise UnknownToolError(call.tool)
        call.route, call.definition = entry
        return None


class ValidateStage:
    """Arguments must fit the tool's ``inputSchema`` and the size limit."""

    name = "validate"

    def __init__(self, max_argument_bytes: int) -> None:
        self.max_argument_bytes = max_argument_bytes
        self._validators: dict[str, tuple[int, Draft202012Validator]] = {}

    async def __call__(self, call: ToolCall) -> Verdict | None:
        size = len(json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":")).encode())
        if size > self.max_argument_bytes:
            return _refuse(
                "argument-size", f"arguments are {size} bytes; the limit is {self.max_argument_bytes}"
            )
        assert call.definition is not None
        schema = call.definition.input_schema
        validator = self._validator(call.tool, schema)
        error = next(iter(sorted(validator.iter_errors(call.arguments), key=lambda e: e.path)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "<arguments>"
            return _refuse("input-schema", f"invalid arguments at {where}: {error.message}")
        return None

    def _validator(self, tool: str, schema: dict[str, Any]) -> Draft202012Validator:
        key = id(schema)
        cached = self._validators.get(tool)
        if cached is None or cached[0] != key:
            cached = (key, Draft202012Validator(schema))
            self._validators[tool] = cached
        return cached[1]


class DecideStage:
    """The policy decision for the call (the same decision point that filters ``tools/list``)."""

    name = "decide"

    def __init__(
        self, tool_info: Callable[[str], ToolInfo | None], policy: Callable[[], AccessPolicy]
    ) -> None:
        self._tool_info = tool_info
        self._policy = policy

    async def __call__(self, call: ToolCall) -> Verdict | None:
        info = self._tool_info(call.tool)
        if info is None:
            raise UnknownToolError(call.tool)
        call.verdict = self._policy().decide(call, info)
        return call.verdict if not call.verdict.decision.forwards else None


def _refuse(rule: str, reason: str) -> Verdict:
    return Verdict(decision=Decision.BLOCK, rules=(rule,), reason=reason)
