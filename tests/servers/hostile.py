"""A hostile upstream speaking raw JSON-RPC over stdio, bypassing any SDK validation.

It lists broken tool definitions next to a good one and answers calls with garbage.

Env: PAGES (more ``tools/list`` pages after the first, each one tool ``page_<n>``),
PAGE_DESCRIPTION_BYTES (the length of those tools' descriptions).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

OVERSIZED_SCHEMA = {
    "type": "object",
    "properties": {f"p{i}": {"type": "string", "description": "d" * 1000} for i in range(300)},
}
GARBAGE = {
    "surrogate": b'{"content": [{"type": "text", "text": "a\\ud800b"}]}',  # valid JSON, as json.dumps writes
    "invalid_utf8": b'{"content": [{"type": "text", "text": "a\xff\xfeb"}]}',
    "deep": b'{"content": [], "structuredContent": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
}
"""Results (raw bytes) the gateway's JSON parser cannot take as they are."""
DECOY = (
    b'{"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": {"id": %s, "result": "\xff"}}}'
)
"""Not the answer, but unparseable and naming the call's id (nested) before the real answer."""

TOOLS: list[Any] = [
    {"name": "good", "description": "Fine.", "inputSchema": {"type": "object"}},
    {
        "name": "garbage",
        "description": "Answers with a malformed result; with kind, with a line that is hard to parse.",
        "inputSchema": {"type": "object", "properties": {"kind": {"enum": [*GARBAGE, "decoy"]}}},
    },
    {"name": "flood", "description": "Answers with an endless result.", "inputSchema": {"type": "object"}},
    {"name": "broken", "description": "Schema is a string.", "inputSchema": {"type": "string"}},
    {"name": "bad schema", "description": "Space in the name.", "inputSchema": {"type": "object"}},
    {"name": "noschema", "description": "No inputSchema at all."},
    {"name": "invalid_json_schema", "inputSchema": {"type": "object", "properties": {"a": {"type": 5}}}},
    "not even an object",
    {"name": "verbose", "description": "v" * 70_000, "inputSchema": {"type": "object"}},
    {"name": "bloated", "description": "A 300 kB schema.", "inputSchema": OVERSIZED_SCHEMA},
]


def page_tool(page: int, description_bytes: int) -> dict[str, Any]:
    return {"name": f"page_{page}", "description": "x" * description_bytes, "inputSchema": {"type": "object"}}


def tools_page(cursor: str | None) -> dict[str, Any]:
    page = int(cursor) if cursor else 0
    tools = TOOLS if page == 0 else [page_tool(page, int(os.environ.get("PAGE_DESCRIPTION_BYTES", "10")))]
    more = page < int(os.environ.get("PAGES", "0"))
    return {"tools": tools, **({"nextCursor": str(page + 1)} if more else {})}


def reply(msg_id: Any, result: Any) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        msg = json.loads(line)
        method, msg_id = msg.get("method"), msg.get("id")
        if msg_id is None:
            continue
        if method == "initialize":
            reply(
                msg_id,
                {
                    "protocolVersion": msg["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "hostile", "version": "0"},
                },
            )
        elif method == "tools/list":
            reply(msg_id, tools_page((msg.get("params") or {}).get("cursor")))
        elif method == "tools/call":
            name = msg["params"]["name"]
            if name == "flood":
                head = json.dumps({"jsonrpc": "2.0", "id": msg_id})[:-1]
                sys.stdout.write(head + ', "result": {"content": [{"type": "text", "text": "')
                chunk = "A" * 65536
                while True:  # never ends: the gateway must cut it off while reading
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
            kind = (msg["params"].get("arguments") or {}).get("kind")
            if name == "garbage" and kind in GARBAGE:
                head = json.dumps({"jsonrpc": "2.0", "id": msg_id})[:-1].encode()
                sys.stdout.buffer.write(head + b', "result": ' + GARBAGE[kind] + b"}\n")
                sys.stdout.buffer.flush()
            elif name == "garbage" and kind == "decoy":
                sys.stdout.buffer.write(DECOY % json.dumps(msg_id).encode() + b"\n")
                reply(msg_id, {"content": [{"type": "text", "text": "ok"}]})
            elif name == "good":
                reply(msg_id, {"content": [{"type": "text", "text": "ok"}]})
            else:
                reply(msg_id, {"content": "garbage, not a list"})
        else:
            sys.stdout.write(
                json.dumps(
                    {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32601, "message": "Method not found"}}
                )
                + "\n"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
