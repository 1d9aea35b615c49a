"""Tool schemas are compiled with jsonschema-rs: the draft they name, errors with their
path, and never a fetch for a ``$ref``."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_guard.json_schemas import InvalidSchemaError, compile_schema, first_error
from mcp_guard.upstreams.tooldefs import ToolLimits, valid_tools
from tests.harness import serve_http

DRAFT_04 = "http://json-schema.org/draft-04/schema#"


@pytest.mark.anyio
async def test_a_remote_ref_is_never_fetched_and_its_tool_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetched: list[str] = []

    async def schema(request: Request) -> JSONResponse:
        fetched.append(request.url.path)
        return JSONResponse({"type": "string"})

    async with serve_http(Starlette(routes=[Route("/schema.json", schema)])) as url:
        remote = {"type": "object", "properties": {"a": {"$ref": f"{url}/schema.json"}}}
        with pytest.raises(InvalidSchemaError, match=r"schema\.json"):
            compile_schema(remote)
        tools = valid_tools(
            "up",
            [{"name": "fetchy", "inputSchema": remote}, {"name": "fine", "inputSchema": {"type": "object"}}],
            ToolLimits(description_bytes=65_536, definition_bytes=262_144),
        )
    assert [t.name for t in tools] == ["fine"]
    assert "skipping tool 'fetchy': inputSchema is not a valid JSON Schema" in caplog.text
    assert fetched == []


def test_a_ref_inside_the_schema_resolves() -> None:
    validator = compile_schema(
        {"type": "object", "$defs": {"id": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/id"}}}
    )
    assert first_error(validator, {"a": "x"}) is None
    assert first_error(validator, {"a": 1}) == ("a", '1 is not of type "string"')


def test_the_draft_a_schema_names_is_the_one_it_is_checked_in() -> None:
    # draft-04's boolean exclusiveMaximum; in 2020-12 it must be a number
    bounded: dict[str, Any] = {"type": "number", "maximum": 5, "exclusiveMaximum": True}
    validator = compile_schema({"$schema": DRAFT_04, "type": "object", "properties": {"n": bounded}})
    assert first_error(validator, {"n": 4}) is None
    assert first_error(validator, {"n": 5}) is not None
    with pytest.raises(InvalidSchemaError):
        compile_schema({"type": "object", "properties": {"n": bounded}})


def test_a_schema_naming_an_unknown_draft_is_checked_as_2020_12() -> None:
    validator = compile_schema(
        {"$schema": "https://example.com/my-draft", "type": "object", "required": ["a"]}
    )
    assert first_error(validator, {}) == ("", '"a" is a required property')


def test_the_first_error_by_path_is_reported() -> None:
    validator = compile_schema(
        {
            "type": "object",
            "properties": {"b": {"type": "array", "items": {"type": "integer"}}, "a": {"type": "string"}},
        }
    )
    assert first_error(validator, {"b": [1, "x"], "a": 2}) == ("a", '2 is not of type "string"')
    assert first_error(validator, {"b": [1, "x"]}) == ("b/1", '"x" is not of type "integer"')
