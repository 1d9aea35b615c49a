"""Result bounds: how much of a tool result reaches the agent.

:func:`bound_result` is pure: a ``CallToolResult`` and a :class:`BoundsSpec` in, the
bounded result and what was done out. Over a bound it truncates with an explicit
marker (``…[mcp-guard: truncated 123 bytes]``) or, with ``on_exceed: block``,
replaces the result with an error naming the bound.

:class:`ByteBudget` guards the transport reader: it counts bytes as they arrive and
raises :class:`ResultTooLarge` past a hard cap, so a hostile upstream cannot make the
gateway buffer gigabytes before any bound is applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mcp.types import CallToolResult, ContentBlock, EmbeddedResource, TextContent, TextResourceContents

from mcp_guard.controls.config import BoundsSpec
from mcp_guard.decision import Decision, Verdict
from mcp_guard.errors import GuardError

DEFAULT_READ_LIMIT = 64 * 1024 * 1024
"""Hard cap on one upstream message when no bound matches the tool."""
READ_SLACK = 64 * 1024
"""Allowance for the JSON-RPC envelope around a result."""
_MARKER_RESERVE = 160


class ResultTooLarge(GuardError):
    """More bytes arrived than a :class:`ByteBudget` allows."""

    def __init__(self, limit: int, seen: int) -> None:
        self.limit = limit
        self.seen = seen
        super().__init__(f"upstream result exceeds the {limit}-byte read limit ({seen} bytes so far)")


class ByteBudget:
    """Counts bytes read from a stream against a hard ``limit``.

    Call :meth:`consume` with each chunk's length *before* buffering the chunk.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def consume(self, n: int) -> None:
        """Count ``n`` more bytes.

        Raises:
            ResultTooLarge: the total is now over ``limit``.
        """
        self.used += n
        if self.used > self.limit:
            raise ResultTooLarge(self.limit, self.used)

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


def read_limit(spec: BoundsSpec | None) -> int:
    """The hard read cap for a tool: explicit ``max_read_bytes``, else derived from ``max_bytes``."""
    if spec is None:
        return DEFAULT_READ_LIMIT
    if spec.max_read_bytes is not None:
        return spec.max_read_bytes
    if spec.max_bytes is None:
        return DEFAULT_READ_LIMIT
    # Truncation needs the whole result first; JSON escaping can inflate text up to 6x.
    factor = 1 if spec.on_exceed == "block" else 4
    return spec.max_bytes * factor + READ_SLACK


@dataclass(frozen=True, slots=True)
class BoundsOutcome:
    """What :func:`bound_result` produced.

    ``actions`` lists what was done, one phrase each (empty: untouched). When
    ``verdict`` is set the bound blocks the result: ``result`` is then a short error
    result, never the oversized original.
    """

    result: CallToolResult
    actions: tuple[str, ...] = ()
    verdict: Verdict | None = None

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def marker(amount: int, unit: str) -> str:
    return f"…[mcp-guard: truncated {amount} {unit}]"


def size_of(value: CallToolResult | ContentBlock) -> int:
    """Bytes of ``value`` as serialized JSON (aliases, no nulls), as it goes on the wire: the
    serializer's own bytes, not decoded to text and encoded again (a large result is
    measured more than once)."""
    return len(value.__pydantic_serializer__.to_json(value, by_alias=True, exclude_none=True))


def bound_result(result: CallToolResult, spec: BoundsSpec) -> BoundsOutcome:
    """Apply ``spec`` to ``result``; see :class:`BoundsOutcome`."""
    over = _violations(result, spec)
    if not over:
        return BoundsOutcome(result)
    if spec.on_exceed == "block":
        reason = f"Result bound '{spec.id}' exceeded: {'; '.join(over)}."
        verdict = Verdict(
            decision=Decision.BLOCK,
            rules=(spec.id,),
            reason=reason,
            details={"control": "result_bounds", "exceeded": over},
        )
        blocked = CallToolResult(content=[TextContent(text=reason)], is_error=True)
        return BoundsOutcome(blocked, (f"blocked: {'; '.join(over)}",), verdict)
    actions: list[str] = []
    content = list(result.content)
    if spec.max_items is not None and len(content) > spec.max_items:
        dropped = len(content) - spec.max_items
        content = content[: spec.max_items]
        content = _note_on_last(content, f"…[mcp-guard: dropped {dropped} more content items]")
        actions.append(f"dropped {dropped} content items")
    if spec.max_text_chars is not None:
        limit = spec.max_text_chars
        for i, item in enumerate(content):
            text = _text_of(item)
            if text is not None and len(text) > limit:
                content[i] = _with_text(item, text[:limit] + marker(len(text) - limit, "chars"))
                actions.append(f"truncated content[{i}] by {len(text) - limit} chars")
    out = result.model_copy(update={"content": content})
    if spec.max_bytes is not None and size_of(out) > spec.max_bytes:
        out = _fit_bytes(out, spec.max_bytes, actions)
    return BoundsOutcome(out, tuple(actions))


def _violations(result: CallToolResult, spec: BoundsSpec) -> list[str]:
    over = []
    if spec.max_items is not None and len(result.content) > spec.max_items:
        over.append(f"{len(result.content)} content items > {spec.max_items}")
    if spec.max_text_chars is not None:
        for i, item in enumerate(result.content):
            text = _text_of(item)
            if text is not None and len(text) > spec.max_text_chars:
                over.append(f"content[{i}] has {len(text)} characters > {spec.max_text_chars}")
    if spec.max_bytes is not None:
        size = size_of(result)
        if size > spec.max_bytes:
            over.append(f"{size} bytes > {spec.max_bytes}")
    return over


def _text_of(item: ContentBlock) -> str | None:
    if isinstance(item, TextContent):
        return item.text
    if isinstance(item, EmbeddedResource) and isinstance(item.resource, TextResourceContents):
        return item.resource.text
    return None


def _with_text(item: ContentBlock, text: str) -> ContentBlock:
    if isinstance(item, EmbeddedResource):
        return item.model_copy(update={"resource": item.resource.model_copy(update={"text": text})})
    return item.model_copy(update={"text": text})


def _note_on_last(content: list[ContentBlock], note: str) -> list[ContentBlock]:
    """Append ``note`` to the last text item, or replace the last item by it (no item is added)."""
    for i in range(len(content) - 1, -1, -1):
        text = _text_of(content[i])
        if text is not None:
            content[i] = _with_text(content[i], f"{text}\n{note}")
            return content
    content[-1] = TextContent(text=note)
    return content


def _json_len(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _fit_bytes(result: CallToolResult, max_bytes: int, actions: list[str]) -> CallToolResult:
    envelope = size_of(result.model_copy(update={"content": [], "structured_content": None}))
    budget = max_bytes - envelope - _MARKER_RESERVE
    structured = result.structured_content
    notes: list[str] = []
    if structured is not None:
        s_size = _json_len(structured) + len(',"structuredContent":')
        content_size = sum(size_of(c) + 1 for c in result.content)
        if s_size + content_size > budget and s_size > budget // 2:
            structured = None
            notes.append(f"structured content dropped ({s_size} bytes)")
            actions.append(f"dropped structured content ({s_size} bytes)")
        else:
            budget -= s_size
    kept: list[ContentBlock] = []
    dropped = dropped_bytes = 0
    for i, item in enumerate(result.content):
        size = size_of(item) + 1
        if dropped == 0 and size <= budget:
            kept.append(item)
            budget -= size
            continue
        text = _text_of(item)
        if dropped == 0 and text is not None and budget > 64:
            cut = _cut_to(text, budget - (size - _json_len(text)) - 48)
            removed = len(text.encode()) - len(cut.encode())
            kept.append(_with_text(item, cut + marker(removed, "bytes")))
            actions.append(f"truncated content[{i}] by {removed} bytes")
            budget = 0
            continue
        dropped += 1
        dropped_bytes += size
    if dropped:
        notes.append(f"dropped {dropped} content items ({dropped_bytes} bytes)")
        actions.append(f"dropped {dropped} content items ({dropped_bytes} bytes)")
    if notes:
        kept.append(TextContent(text=f"…[mcp-guard: result over {max_bytes} bytes: {'; '.join(notes)}]"))
    out = result.model_copy(update={"content": kept, "structured_content": structured})
    if size_of(out) > max_bytes:  # estimates were off (or the envelope alone is too big): keep only a note
        note = f"…[mcp-guard: result of {size_of(result)} bytes dropped; over the {max_bytes}-byte bound]"
        out = result.model_copy(update={"content": [TextContent(text=note)], "structured_content": None})
        actions.append("replaced the whole result with a note")
    return out


def _cut_to(text: str, max_json_bytes: int) -> str:
    """The longest prefix of ``text`` whose JSON string encoding fits ``max_json_bytes`` (about)."""
    if max_json_bytes <= 2:
        return ""
    c = min(len(text), max_json_bytes)
    for _ in range(20):
        size = _json_len(text[:c])
        if size <= max_json_bytes:
            return text[:c]
        c = max(int(c * max_json_bytes / size) - 1, 0)
    return ""
