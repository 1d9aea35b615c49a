"""Aggregation and pass-through: what a client sees through the gateway is what upstreams offer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_guard.config.settings import GatewaySettings, ServerSettings
from mcp_guard.upstreams.supervisor import Status
from mcp_guard.upstreams.tooldefs import json_size
from tests.harness import behaviour_upstream, gateway_client, hostile_upstream, write_upstreams
from tests.servers import behaviour, hostile

pytestmark = pytest.mark.anyio


async def test_tools_are_namespaced_and_keep_every_field_of_their_definition(tmp_path: Path) -> None:
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
    echo = tools["beh__echo"]
    assert echo.title == "Echo"
    assert echo.description == "Echo text back in every content type."
    assert echo.input_schema["required"] == ["text"]
    assert echo.output_schema is not None and echo.output_schema["required"] == ["echo"]
    assert echo.annotations is not None and echo.annotations.read_only_hint is True
    assert echo.meta == {"vendor/x": 1}
    assert echo.icons is not None and str(echo.icons[0].src) == "https://example.com/icon.png"


async def test_tools_from_every_page_of_an_upstream_listing_are_aggregated(tmp_path: Path) -> None:
    # The behaviour upstream pages its 8 tools 3 at a time.
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        names = {t.name for t in (await client.list_tools()).tools}
    assert {"beh__echo", "beh__fail", "beh__progress", "beh__hang", "beh__add_tool", "beh__crash"} <= names


async def test_tools_with_invalid_definitions_are_skipped_and_the_rest_are_listed(tmp_path: Path) -> None:
    upstreams = hostile_upstream(tmp_path)
    async with gateway_client(upstreams) as (_, client):
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("bad__good", {})
    assert names == {"bad__good", "bad__garbage", "bad__flood"}
    assert isinstance(result, types.CallToolResult) and result.content[0].text == "ok"  # type: ignore[union-attr]


async def test_a_malformed_upstream_result_becomes_a_clear_error_result(tmp_path: Path) -> None:
    upstreams = hostile_upstream(tmp_path)
    async with gateway_client(upstreams) as (_, client):
        result = await client.call_tool("bad__garbage", {})
    assert isinstance(result, types.CallToolResult) and result.is_error
    assert "upstream 'bad'" in result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "problem"),
    [("invalid_utf8", "invalid unicode code point"), ("deep", "recursion limit exceeded")],
)
async def test_an_answer_that_cannot_be_parsed_fails_its_call_at_once_naming_the_problem(
    tmp_path: Path, kind: str, problem: str
) -> None:
    upstreams = hostile_upstream(tmp_path, call_timeout_s="60")
    async with gateway_client(upstreams) as (gateway, client):
        with anyio.fail_after(10):  # far below call_timeout_s: the answer came, it is just unreadable
            result = await client.call_tool("bad__garbage", {"kind": kind})
        assert isinstance(result, types.CallToolResult) and result.is_error
        text = result.content[0].text  # type: ignore[union-attr]
        assert "upstream 'bad'" in text and "cannot be parsed as JSON" in text and problem in text
        again = await client.call_tool("bad__good", {})  # the connection stays up
        assert gateway.upstreams["bad"].connections == 1
    assert isinstance(again, types.CallToolResult) and again.content[0].text == "ok"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("decoy", "ok"),  # an unparseable message naming the call's id inside it is not its answer
        ("surrogate", "a\ufffdb"),  # a lone surrogate escape reads as the replacement character
    ],
)
async def test_a_readable_answer_after_or_with_a_hard_to_parse_line_reaches_the_client(
    tmp_path: Path, kind: str, answer: str
) -> None:
    upstreams = hostile_upstream(tmp_path, call_timeout_s="60")
    async with gateway_client(upstreams) as (_, client):
        with anyio.fail_after(10):
            result = await client.call_tool("bad__garbage", {"kind": kind})
    assert isinstance(result, types.CallToolResult) and not result.is_error
    assert result.content[0].text == answer  # type: ignore[union-attr]


async def test_the_gateway_paginates_its_own_tool_list(tmp_path: Path) -> None:
    settings = GatewaySettings(server=ServerSettings(list_page_size=2))
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        first = await client.list_tools()
        assert len(first.tools) == 2 and first.next_cursor
        names = [t.name for t in first.tools]
        cursor = first.next_cursor
        while cursor:
            page = await client.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            names += [t.name for t in page.tools]
            cursor = page.next_cursor
        with pytest.raises(MCPError, match="invalid cursor"):
            await client.list_tools(params=types.PaginatedRequestParams(cursor="zz-not-a-cursor"))
    assert sorted(names) == sorted(f"beh__{tool['name']}" for tool in behaviour.TOOLS)


async def test_results_pass_through_with_every_content_type_structured_content_and_meta(
    tmp_path: Path,
) -> None:
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        result = await client.call_tool("beh__echo", {"text": "hi"}, meta={"trace": "abc"})
    assert isinstance(result, types.CallToolResult)
    assert [c.type for c in result.content] == ["text", "image", "audio", "resource_link", "resource"]
    assert result.structured_content == {"echo": "hi"}
    assert result.is_error is False
    assert result.meta is not None
    assert result.meta["upstream/meta"]["seen_meta"]["trace"] == "abc"


async def test_an_upstream_is_error_result_reaches_the_client_unchanged(tmp_path: Path) -> None:
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        result = await client.call_tool("beh__fail", {})
    assert isinstance(result, types.CallToolResult)
    assert result.is_error is True
    assert result.content[0].text == "it failed"  # type: ignore[union-attr]


async def test_an_unknown_tool_is_a_json_rpc_error_naming_it(tmp_path: Path) -> None:
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        with pytest.raises(MCPError, match="Unknown tool: beh__nope"):
            await client.call_tool("beh__nope", {})


async def test_arguments_that_break_the_input_schema_are_refused_with_the_reason(tmp_path: Path) -> None:
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        result = await client.call_tool("beh__echo", {"text": 5})
    assert isinstance(result, types.CallToolResult) and result.is_error
    assert result.meta is not None
    decision = result.meta["mcp-guard/decision"]
    assert decision["decision"] == "BLOCK" and decision["rules"] == ["input-schema"]
    assert "text" in decision["reason"]


async def test_resources_and_prompts_of_upstreams_pass_through_namespaced(tmp_path: Path) -> None:
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        resources = (await client.list_resources()).resources
        assert [(str(r.uri), r.name) for r in resources] == [("memo://readme", "beh__readme")]
        read = await client.read_resource("memo://readme")
        assert read.contents[0].text == "body of memo://readme"  # type: ignore[union-attr]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["beh__greet"]
        prompt = await client.get_prompt("beh__greet", {"who": "Ada"})
        assert prompt.messages[0].content.text == "Hello Ada"  # type: ignore[union-attr]


async def test_two_upstreams_with_an_empty_prefix_and_the_same_tool_keep_the_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upstreams = write_upstreams(
        tmp_path,
        """
upstreams:
  one:
    command: "{python}"
    args: ["{behaviour}"]
    prefix: ""
  two:
    command: "{python}"
    args: ["{behaviour}"]
    prefix: ""
""",
    )
    async with gateway_client(upstreams) as (gateway, client):
        names = [t.name for t in (await client.list_tools()).tools]
    assert names.count("echo") == 1
    assert gateway.catalog.tools["echo"][0].upstream == "one"
    assert any("'one' and 'two'" in r.getMessage() for r in caplog.records)


async def test_progress_notifications_from_the_upstream_reach_the_client(tmp_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):
        result = await client.call_tool("beh__progress", {}, progress_callback=on_progress)
    assert isinstance(result, types.CallToolResult) and not result.is_error
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_concurrent_calls_each_get_their_own_result(tmp_path: Path) -> None:
    results: dict[int, Any] = {}
    async with gateway_client(behaviour_upstream(tmp_path)) as (_, client):

        async def one(i: int) -> None:
            results[i] = await client.call_tool("beh__echo", {"text": f"call-{i}"})

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(one, i)
    assert all(results[i].structured_content == {"echo": f"call-{i}"} for i in range(30))


async def test_an_endless_result_is_cut_off_while_reading_and_the_upstream_comes_back(tmp_path: Path) -> None:
    upstreams = hostile_upstream(tmp_path, max_message_bytes="1048576")
    async with gateway_client(upstreams) as (gateway, client):
        upstream = gateway.upstreams["bad"]
        with anyio.fail_after(20):
            result = await client.call_tool("bad__flood", {})
        assert isinstance(result, types.CallToolResult) and result.is_error
        assert "larger than 1048576 bytes" in result.content[0].text  # type: ignore[union-attr]
        with anyio.fail_after(20):  # the supervisor reconnects
            while upstream.connections < 2 or upstream.status is not Status.READY:
                await upstream.changed.wait()
        again = await client.call_tool("bad__good", {})
    assert isinstance(again, types.CallToolResult) and not again.is_error


async def test_a_tool_over_the_description_or_definition_limit_is_skipped_naming_the_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bloated = next(t for t in hostile.TOOLS if isinstance(t, dict) and t["name"] == "bloated")
    async with gateway_client(hostile_upstream(tmp_path)) as (_, client):
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"bad__good", "bad__garbage", "bad__flood"}
    warnings = {r.getMessage() for r in caplog.records}
    assert (
        "upstream bad: skipping tool 'verbose': description is 70000 bytes, "
        "over max_tool_description_bytes (65536)" in warnings
    )
    assert (
        f"upstream bad: skipping tool 'bloated': definition is {json_size(bloated)} bytes, "
        "over max_tool_definition_bytes (262144)" in warnings
    )


async def test_the_description_limit_is_set_per_upstream(tmp_path: Path) -> None:
    upstreams = hostile_upstream(tmp_path, max_tool_description_bytes="5")
    async with gateway_client(upstreams) as (_, client):
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"bad__good"}  # "Fine." is 5 bytes; the other descriptions are longer


async def test_a_listing_past_max_listing_items_stops_paging_and_keeps_the_items_that_fit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first_page = len(hostile.TOOLS)
    upstreams = hostile_upstream(tmp_path, env='{PAGES: "5"}', max_listing_items=str(first_page + 2))
    async with gateway_client(upstreams) as (_, client):
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"bad__good", "bad__garbage", "bad__flood", "bad__page_1", "bad__page_2"}
    assert (
        f"upstream bad: tools/list returned more than {first_page + 2} items (max_listing_items); "
        f"kept the first {first_page + 2} item(s)" in {r.getMessage() for r in caplog.records}
    )


async def test_a_listing_past_max_listing_bytes_stops_paging_and_keeps_the_items_that_fit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    page_tool = json_size(hostile.page_tool(1, 5000))
    budget = sum(json_size(t) for t in hostile.TOOLS) + 2 * page_tool + page_tool // 2
    upstreams = hostile_upstream(
        tmp_path, env='{PAGES: "5", PAGE_DESCRIPTION_BYTES: "5000"}', max_listing_bytes=str(budget)
    )
    async with gateway_client(upstreams) as (_, client):
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"bad__good", "bad__garbage", "bad__flood", "bad__page_1", "bad__page_2"}
    assert (
        f"upstream bad: tools/list returned more than {budget} bytes (max_listing_bytes); "
        f"kept the first {len(hostile.TOOLS) + 2} item(s)" in {r.getMessage() for r in caplog.records}
    )
