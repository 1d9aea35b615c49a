from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mcp.types import CallToolResult, EmbeddedResource, ImageContent, TextContent, TextResourceContents, Tool

from mcp_guard.controls import BoundsSpec, ByteBudget, ResultTooLarge, bound_result, read_limit
from mcp_guard.controls.bounds import size_of
from mcp_guard.decision import Decision
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.results import BoundStage
from mcp_guard.principal import Principal
from mcp_guard.upstreams.catalog import Route
from tests.controls.controls_support import controls


def spec(**kw: object) -> BoundsSpec:
    return BoundsSpec.model_validate({"id": "bounds", **kw})


def text_result(*texts: str, structured: object = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=t) for t in texts], structured_content=structured)


def test_a_result_within_bounds_is_untouched() -> None:
    result = text_result("hello")
    out = bound_result(result, spec(max_bytes=1000, max_text_chars=10, max_items=1))
    assert out.result is result and not out.changed and out.verdict is None


def test_long_text_is_truncated_with_an_explicit_marker() -> None:
    out = bound_result(text_result("x" * 150), spec(max_text_chars=100))
    text = out.result.content[0].text  # type: ignore[union-attr]
    assert text == "x" * 100 + "…[mcp-guard: truncated 50 chars]"
    assert out.actions == ("truncated content[0] by 50 chars",)


def test_text_inside_an_embedded_resource_is_truncated_too() -> None:
    res = EmbeddedResource(resource=TextResourceContents(uri="file:///a", text="y" * 20))
    out = bound_result(CallToolResult(content=[res]), spec(max_text_chars=5))
    item = out.result.content[0]
    assert isinstance(item, EmbeddedResource) and isinstance(item.resource, TextResourceContents)
    assert item.resource.text == "yyyyy…[mcp-guard: truncated 15 chars]"


def test_extra_items_are_dropped_and_the_last_kept_text_says_so() -> None:
    out = bound_result(text_result("a", "b", "c", "d"), spec(max_items=2))
    assert len(out.result.content) == 2
    assert out.result.content[1].text == "b\n…[mcp-guard: dropped 2 more content items]"  # type: ignore[union-attr]


def test_an_oversized_result_is_cut_to_the_byte_bound_with_a_marker() -> None:
    result = text_result("start " + "z" * 100_000)
    out = bound_result(result, spec(max_bytes=4096))
    assert size_of(out.result) <= 4096
    text = out.result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("start zzz") and "…[mcp-guard: truncated " in text and text.endswith(" bytes]")


def test_multibyte_and_escaped_text_still_fits_the_byte_bound() -> None:
    out = bound_result(text_result('é"\n' * 50_000), spec(max_bytes=2048))
    assert size_of(out.result) <= 2048


def test_items_after_the_bound_are_dropped_and_binary_items_are_never_cut() -> None:
    image = ImageContent(data="A" * 10_000, mime_type="image/png")
    result = CallToolResult(content=[TextContent(text="caption"), image, TextContent(text="tail")])
    out = bound_result(result, spec(max_bytes=1024))
    assert size_of(out.result) <= 1024
    assert [type(c).__name__ for c in out.result.content] == ["TextContent", "TextContent"]
    assert "dropped 2 content items" in out.result.content[-1].text  # type: ignore[union-attr]


def test_oversized_structured_content_is_dropped_and_said_so() -> None:
    result = text_result("summary", structured={"rows": ["r" * 50 for _ in range(500)]})
    out = bound_result(result, spec(max_bytes=2048))
    assert out.result.structured_content is None
    assert size_of(out.result) <= 2048
    assert "structured content dropped" in out.result.content[-1].text  # type: ignore[union-attr]
    assert out.result.content[0].text == "summary"  # type: ignore[union-attr]


def test_small_structured_content_is_kept_while_text_is_cut() -> None:
    result = text_result("t" * 10_000, structured={"ok": True})
    out = bound_result(result, spec(max_bytes=2048))
    assert out.result.structured_content == {"ok": True}
    assert size_of(out.result) <= 2048


def test_block_mode_replaces_the_result_with_an_error_naming_the_bound() -> None:
    out = bound_result(text_result("x" * 5000), spec(max_bytes=1024, on_exceed="block"))
    assert out.verdict is not None and out.verdict.decision is Decision.BLOCK
    assert out.verdict.rules == ("bounds",) and out.verdict.details["control"] == "result_bounds"
    assert out.result.is_error and "bytes > 1024" in out.result.content[0].text  # type: ignore[union-attr]


def test_byte_budget_raises_once_the_stream_passes_the_limit() -> None:
    budget = ByteBudget(10)
    budget.consume(6)
    budget.consume(4)
    assert budget.remaining == 0
    with pytest.raises(ResultTooLarge) as err:
        budget.consume(1)
    assert err.value.limit == 10 and err.value.seen == 11


def test_the_read_limit_follows_the_bounds() -> None:
    assert read_limit(spec(max_read_bytes=2048)) == 2048
    assert read_limit(spec(max_bytes=1024, on_exceed="block")) == 1024 + 64 * 1024
    assert read_limit(None) == 64 * 1024 * 1024


def test_the_most_specific_bound_applies_to_a_tool() -> None:
    c = controls(
        result_bounds=[
            {"id": "all", "max_bytes": 1_000_000},
            {"id": "bank", "upstreams": ["bank"], "max_bytes": 10_000},
            {"id": "statements", "tools": ["bank__statement*"], "max_bytes": 100_000},
        ]
    )
    assert c.bounds_for("bank", "bank__statements").id == "statements"  # type: ignore[union-attr]
    assert c.bounds_for("bank", "bank__pay").id == "bank"  # type: ignore[union-attr]
    assert c.bounds_for("search", "search__web").id == "all"  # type: ignore[union-attr]
    assert c.byte_budget("bank", "bank__pay").limit == 4 * 10_000 + 64 * 1024
    out = c.bound_result("bank", "bank__pay", text_result("q" * 20_000))
    assert size_of(out.result) <= 10_000


@pytest.mark.anyio
async def test_a_result_that_fits_only_without_its_schema_required_structured_content_is_withheld() -> None:
    schema = {"type": "object", "properties": {"rows": {"type": "array"}}, "required": ["rows"]}
    call = ToolCall(
        principal=Principal(user="alice"),
        session_id="s-1",
        tool="db__query",
        arguments={},
        received_at=datetime(2026, 6, 15, tzinfo=UTC),
        route=Route("db", "query"),
        definition=Tool(name="query", input_schema={"type": "object"}, output_schema=schema),
    )
    c = controls(result_bounds=[{"id": "small-results", "max_bytes": 2048}])
    big = text_result("summary", structured={"rows": ["r" * 50 for _ in range(500)]})

    out = await BoundStage(c)(call, big)

    assert out.is_error and out.structured_content is None
    assert call.verdict.decision is Decision.BLOCK and call.verdict.rules == ("small-results",)
    assert "outputSchema requires" in out.content[0].text  # type: ignore[union-attr]
