"""A stdio client's line the SDK cannot read gets a JSON-RPC error naming its fault, where the
SDK alone would drop it and leave the client waiting. The pure rule first, then a real gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_guard.malformed import refusal
from mcp_guard.stdio_wire import OverlongLine
from tests.stdio_peer import LOCAL_SETTINGS, start_gateway

PARSE_ERROR, INVALID_REQUEST = -32700, -32600

UNREADABLE: list[tuple[str, int, int | str | None, str]] = [
    ("{not json", PARSE_ERROR, None, "Parse error: key must be a string at line 1 column 2"),
    ("[1, 2", PARSE_ERROR, None, "Parse error: EOF while parsing a list"),
    (
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"arguments": {"a": "x\\ud800"}}}',
        INVALID_REQUEST,
        7,
        "a string holds a lone surrogate escape, which is not Unicode text",
    ),
    (
        '{"jsonrpc": "2.0", "id": "s", "method": "x", "params": {"a": "\\udc00"}}',
        INVALID_REQUEST,
        "s",
        "lone",
    ),
    (
        '{"jsonrpc": "2.0", "id": 9.5, "method": "tools/call"}',
        INVALID_REQUEST,
        None,
        '"id" must be a string or an integer, not 9.5',
    ),
    ('{"jsonrpc": "2.0", "id": true, "method": "ping"}', INVALID_REQUEST, None, "not true"),
    ('{"jsonrpc": "2.0", "id": null, "method": "ping"}', INVALID_REQUEST, None, "not null"),
    ('{"id": 10, "method": "tools/list"}', INVALID_REQUEST, 10, '"jsonrpc" must be "2.0"'),
    ('{"jsonrpc": "1.0", "id": 10, "method": "tools/list"}', INVALID_REQUEST, 10, '"jsonrpc" must be "2.0"'),
    ("[]", INVALID_REQUEST, None, "a JSON array (a batch); MCP takes one message at a time"),
    ('[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', INVALID_REQUEST, None, "a batch"),
    ('"hello"', INVALID_REQUEST, None, "expected a JSON-RPC message object, got a string"),
    ("42", INVALID_REQUEST, None, "got a number"),
    (
        '{"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": [1]}',
        INVALID_REQUEST,
        11,
        '"params" must be an object',
    ),
    ('{"jsonrpc": "2.0", "id": 12, "method": 5}', INVALID_REQUEST, 12, '"method" must be a string'),
    ('{"jsonrpc": "2.0", "id": 13}', INVALID_REQUEST, 13, 'a message needs "method"'),
]


@pytest.mark.parametrize(("line", "code", "request_id", "reason"), UNREADABLE)
def test_each_unreadable_line_is_refused_with_the_error_naming_its_fault(
    line: str, code: int, request_id: int | str | None, reason: str
) -> None:
    refused = refusal(line)
    assert refused is not None
    answer = refused.answer()
    assert answer["id"] == request_id
    assert answer["error"]["code"] == code
    assert reason in answer["error"]["message"]
    assert refused.answered


@pytest.mark.parametrize(
    "message",
    [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "x", "arguments": {"e": "\U0001f600"}},
        },
        {"jsonrpc": "2.0", "id": "abc", "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": None},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": 1, "id": "not the message id"},
        },
        {"jsonrpc": "2.0", "id": 3, "result": {}},
        {"jsonrpc": "2.0", "id": 4, "error": {"code": -1, "message": "no"}},
    ],
)
def test_a_line_the_sdk_reads_passes_unrefused(message: dict[str, Any]) -> None:
    assert refusal(json.dumps(message)) is None


@pytest.mark.parametrize(
    "line", ['{"jsonrpc": "2.0", "id": 14, "result": 5}', '{"jsonrpc": "2.0", "id": 15, "error": "x"}']
)
def test_a_malformed_response_is_refused_but_never_answered(line: str) -> None:
    refused = refusal(line)
    assert refused is not None and not refused.answered


def test_a_line_dropped_for_its_length_is_refused_naming_the_limit() -> None:
    refused = refusal(OverlongLine(1024))
    assert refused is not None and refused.answered
    assert refused.answer() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": INVALID_REQUEST, "message": "Invalid request: a message longer than 1024 bytes"},
    }


@pytest.mark.parametrize("line", ["", "   ", "\r"])
def test_a_blank_line_is_not_answered(line: str) -> None:
    assert refusal(line) is None


@pytest.mark.anyio
@pytest.mark.parametrize("lane", ["on", "off"])
async def test_a_gateway_answers_each_unreadable_line_and_keeps_serving(tmp_path: Path, lane: str) -> None:
    settings = LOCAL_SETTINGS + ("" if lane == "on" else "server: {fast_stdio_calls: false}\n")
    process, peer = await start_gateway(tmp_path, settings)
    lines = [line for line, *_ in UNREADABLE]
    try:
        with anyio.fail_after(30):
            assert process.stdin is not None
            start = len(peer.stdout_lines)
            for line in [*lines, '{"jsonrpc": "2.0", "id": 16, "result": 5}', ""]:
                await process.stdin.send((line + "\n").encode())
            call = {"name": "beh__echo", "arguments": {"text": "still here"}}
            answer = await peer.request(17, "tools/call", call)
            seen = peer.stdout_lines[start:]
    finally:
        process.terminate()
        await process.wait()
    errors = [json.loads(line) for line in seen[:-1]]  # the malformed response and the blank line: no answer
    assert [e["error"]["code"] for e in errors] == [code for _, code, *_ in UNREADABLE]
    assert [e["id"] for e in errors] == [request_id for _, _, request_id, _ in UNREADABLE]
    assert "still here" in json.dumps(answer["result"])
