"""Validating upstream definitions one by one, so one broken tool never breaks the list."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp import types
from pydantic import BaseModel, ValidationError

from mcp_guard.json_schemas import InvalidSchemaError, compile_schema

logger = logging.getLogger(__name__)

TOOL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ToolLimits:
    """Bounds on one tool definition (an upstream's ``max_tool_*_bytes`` settings)."""

    description_bytes: int
    definition_bytes: int


def json_size(item: Any) -> int:
    """The length in bytes of ``item`` as compact UTF-8 JSON (lone surrogates count 3 bytes)."""
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def valid_tools(upstream: str, raw_tools: Iterable[Any], limits: ToolLimits) -> list[types.Tool]:
    """Parse each raw tool dict; skip (with a warning naming it) any that is invalid or too large."""
    tools: list[types.Tool] = []
    seen: set[str] = set()
    for raw in raw_tools:
        name = raw.get("name") if isinstance(raw, Mapping) else None
        problem = _size_problem(raw, limits) or _tool_problem(raw)
        if problem is None and name in seen:
            problem = "duplicate tool name"
        if problem is not None:
            logger.warning("upstream %s: skipping tool %r: %s", upstream, name, problem)
            continue
        tools.append(types.Tool.model_validate(raw, by_name=False))
        seen.add(str(name))
    return tools


def _size_problem(raw: Any, limits: ToolLimits) -> str | None:
    """Checked first, so an oversized definition is never validated or scanned."""
    if not isinstance(raw, Mapping):
        return None
    description = raw.get("description")
    if isinstance(description, str):
        size = len(description.encode("utf-8", "surrogatepass"))
        if size > limits.description_bytes:
            return (
                f"description is {size} bytes, over max_tool_description_bytes ({limits.description_bytes})"
            )
    size = json_size(raw)
    if size > limits.definition_bytes:
        return f"definition is {size} bytes, over max_tool_definition_bytes ({limits.definition_bytes})"
    return None


def _tool_problem(raw: Any) -> str | None:
    if not isinstance(raw, Mapping):
        return "not an object"
    name = raw.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        return "name must match [A-Za-z0-9._-]{1,128}"
    try:
        types.Tool.model_validate(raw, by_name=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    for key in ("inputSchema", "outputSchema"):
        schema = raw.get(key)
        if schema is None:
            continue
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            return f"{key} must be a JSON Schema object with type 'object'"
        try:
            compile_schema(dict(schema))
        except InvalidSchemaError as exc:
            return f"{key} is not a valid JSON Schema: {exc}"
    return None


def valid_items(upstream: str, kind: str, model: type[M], raw_items: Iterable[Any]) -> list[M]:
    """Parse resources / templates / prompts one by one, skipping invalid ones."""
    out: list[M] = []
    for raw in raw_items:
        try:
            out.append(model.model_validate(raw, by_name=False))
        except ValidationError as exc:
            logger.warning(
                "upstream %s: skipping invalid %s %r: %s",
                upstream,
                kind,
                raw.get("name") if isinstance(raw, Mapping) else raw,
                exc.errors()[0]["msg"],
            )
    return out
