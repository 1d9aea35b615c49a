"""The stdio lane: a stdio client's ``tools/call`` answered without the SDK session, exactly
as the SDK would answer it. Real gateway processes, a real upstream process."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from anyio.abc import Process

from tests.stdio_peer import ENVELOPE, LOCAL_SETTINGS, StdioPeer, start_gateway

pytestmark = pytest.mark.anyio

LANE_OFF = LOCAL_SETTINGS + "server: {fast_stdio_calls: false}\n"

Script = list[tuple[int | str, dict[str, Any]]]

SCRIPT: Script = [
    (10, {"name": "beh__echo", "arguments": {"text": "héllo \u2028 \U0001f600"}, "_meta": {"client/x": 1}}),
    ("eleven", {"name": "beh__fail", "arguments": {}}),
    (12, {"name": "beh__leak", "arguments": {}}),
    (13, {"name": "beh__progress", "arguments": {}, "_meta": {"progressToken": "tok-13"}}),
    (14, {"name": "beh__progress", "arguments": {}}),
    (15, {"name": "beh__nope", "arguments": {}}),
    (16, {"name": "beh__echo", "arguments": "not an object"}),
    (17, {"arguments": {}}),
]


VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
ENVELOPE_SCRIPT: Script = [
    *(
        (request_id, {**params, "_meta": {**params.get("_meta", {}), **ENVELOPE}})
        for request_id, params in SCRIPT
    ),
    (
        20,
        {"name": "beh__echo", "arguments": {"text": "a"}, "_meta": {VERSION_KEY: "2026-07-28"}},
    ),  # half an envelope
    (21, {"name": "beh__echo", "arguments": {"text": "b"}, "_meta": {**ENVELOPE, VERSION_KEY: "2099-01-01"}}),
    (22, {"name": "beh__echo", "arguments": {"text": "c"}}),  # no envelope on a 2026-era connection
    (
        23,
        {
            "name": "beh__echo",
            "arguments": {"text": "d"},
            "_meta": {**ENVELOPE, "io.modelcontextprotocol/clientInfo": 7},
        },
    ),
]
"""The same calls in the 2026-07-28 era, and calls the SDK's envelope ladder refuses."""


async def transcript(peer: StdioPeer, script: Script) -> list[dict[str, Any]]:
    """Every message the gateway sends while the script runs, one call at a time."""
    seen: list[dict[str, Any]] = []
    for request_id, params in script:
        await peer.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})
        while True:
            message = await peer.receive()
            seen.append(message)
            if message.get("id") == request_id:
                break
    return seen


def without_audit_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for message in messages:
        decision = message.get("result", {}).get("_meta", {}).get("mcp-guard/decision")
        if decision is not None:
            assert decision.pop("audit_id")
    return messages


async def run_script(
    folder: Path, settings: str, script: Script = SCRIPT, era: Literal["handshake", "envelope"] = "handshake"
) -> tuple[list[dict[str, Any]], str]:
    """The script's transcript and the gateway's log."""
    await anyio.Path(folder).mkdir()
    with (folder / "stderr.log").open("w+b") as log:
        process, peer = await start_gateway(folder, settings, stderr=log, era=era)
        try:
            with anyio.fail_after(30):
                messages = await transcript(peer, script)
        finally:
            process.terminate()
            await process.wait()
        log.seek(0)
        return messages, log.read().decode()


async def test_the_lane_answers_every_call_exactly_as_the_sdk_does(tmp_path: Path) -> None:
    lane, lane_log = await run_script(tmp_path / "lane", LOCAL_SETTINGS)
    sdk, sdk_log = await run_script(tmp_path / "sdk", LANE_OFF)
    assert "tools/call answered directly" in lane_log
    assert "tools/call answered directly" not in sdk_log
    assert without_audit_ids(lane) == without_audit_ids(sdk)

    answers = {m["id"]: m for m in lane if "id" in m}
    assert answers[10]["result"]["structuredContent"] == {"echo": "héllo \u2028 \U0001f600"}
    assert answers[10]["result"]["_meta"]["upstream/meta"]["seen_meta"] == {"client/x": 1}
    assert answers["eleven"]["result"]["isError"] is True
    progress = [m["params"] for m in lane if m.get("method") == "notifications/progress"]
    assert [(p["progressToken"], p["progress"]) for p in progress] == [
        ("tok-13", 1),
        ("tok-13", 2),
        ("tok-13", 3),
    ]
    assert answers[15]["error"]["code"] == -32602 and "beh__nope" in answers[15]["error"]["message"]
    assert answers[16]["error"]["code"] == -32602 and answers[17]["error"]["code"] == -32602


async def test_the_lane_answers_2026_era_calls_exactly_as_the_sdk_does(tmp_path: Path) -> None:
    lane, lane_log = await run_script(tmp_path / "lane", LOCAL_SETTINGS, ENVELOPE_SCRIPT, "envelope")
    sdk, sdk_log = await run_script(tmp_path / "sdk", LANE_OFF, ENVELOPE_SCRIPT, "envelope")
    assert "answered directly (per-request protocol envelope)" in lane_log
    assert "answered directly" not in sdk_log
    assert without_audit_ids(lane) == without_audit_ids(sdk)

    answers = {m["id"]: m for m in lane if "id" in m}
    assert answers[10]["result"]["resultType"] == "complete"
    assert answers[10]["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"]
    assert answers[10]["result"]["structuredContent"] == {"echo": "héllo \u2028 \U0001f600"}
    progress = [m["params"] for m in lane if m.get("method") == "notifications/progress"]
    assert [p["progressToken"] for p in progress] == ["tok-13"] * 3
    assert all("error" in answers[i] for i in (15, 16, 17, 20, 21, 22, 23))


@pytest.mark.parametrize("spelling", ["plain", "escaped"])
async def test_a_call_the_client_cancels_is_never_answered_and_is_cancelled_upstream(
    tmp_path: Path, spelling: str
) -> None:
    process, peer = await start_gateway(tmp_path)
    try:
        with anyio.fail_after(30):
            hang = {"name": "beh__hang", "arguments": {"tag": "lane"}}
            await peer.send({"jsonrpc": "2.0", "id": 50, "method": "tools/call", "params": hang})
            await peer.request(51, "tools/call", {"name": "beh__echo", "arguments": {"text": "in flight"}})
            cancel = json.dumps(
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 50}}
            )
            if spelling == "escaped":  # the same JSON string, with its slash escaped
                cancel = cancel.replace("notifications/cancelled", "notifications\\/cancelled")
            assert process.stdin is not None
            await process.stdin.send((cancel + "\n").encode())
            while not (tmp_path / "cancelled-lane").exists():
                await peer.request(52, "tools/call", {"name": "beh__echo", "arguments": {"text": "ping"}})
            await peer.request(53, "ping", {})
    finally:
        process.terminate()
        await process.wait()
    assert not [line for line in peer.stdout_lines if '"id":50' in line.replace(" ", "")]


async def test_concurrent_calls_with_string_and_number_ids_each_get_their_own_answer(tmp_path: Path) -> None:
    process, peer = await start_gateway(tmp_path)
    ids: list[int | str] = [*range(100, 115), *(f"call-{i}" for i in range(15))]
    try:
        with anyio.fail_after(30):
            for request_id in ids:
                params = {"name": "beh__echo", "arguments": {"text": f"for {request_id!r}"}}
                await peer.send(
                    {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
                )
            answers = {}
            while len(answers) < len(ids):
                message = await peer.receive()
                answers[message["id"]] = message  # type: ignore[index]
    finally:
        process.terminate()
        await process.wait()
    assert {k: v["result"]["structuredContent"]["echo"] for k, v in answers.items()} == {  # type: ignore[index]
        request_id: f"for {request_id!r}" for request_id in ids
    }


async def messages_after_closing_stdin(process: Process, peer: StdioPeer) -> list[dict[str, Any]]:
    """Close the gateway's stdin; everything it writes until it exits (it must exit cleanly)."""
    assert process.stdin is not None and process.stdout is not None
    await process.stdin.aclose()
    with anyio.fail_after(20):
        rest = b"".join([chunk async for chunk in process.stdout])
        assert await process.wait() == 0
    return [json.loads(line) for line in (peer.buffer + rest.decode()).splitlines() if line]


async def test_a_piped_client_that_closes_stdin_still_gets_its_answers(tmp_path: Path) -> None:
    process, peer = await start_gateway(tmp_path)
    echo = {"name": "beh__echo", "arguments": {"text": "last words"}}
    await peer.send({"jsonrpc": "2.0", "id": 60, "method": "tools/call", "params": echo})
    lines = await messages_after_closing_stdin(process, peer)
    assert [m["result"]["structuredContent"] for m in lines if m.get("id") == 60] == [{"echo": "last words"}]


async def test_a_call_still_running_when_stdin_closes_is_cancelled_and_answered_after_a_grace_period(
    tmp_path: Path,
) -> None:
    process, peer = await start_gateway(tmp_path)
    hang = {"name": "beh__hang", "arguments": {"tag": "eof"}}
    await peer.send({"jsonrpc": "2.0", "id": 61, "method": "tools/call", "params": hang})
    lines = await messages_after_closing_stdin(process, peer)
    assert [m["error"] for m in lines if m.get("id") == 61] == [
        {"code": -32000, "message": "Connection closed"}
    ]
    assert (tmp_path / "cancelled-eof").read_text() == "1"


@pytest.mark.parametrize("settings", [LOCAL_SETTINGS, LANE_OFF], ids=["lane", "sdk"])
async def test_a_call_with_nan_or_infinity_in_its_arguments_is_blocked_and_audited(
    tmp_path: Path, settings: str
) -> None:
    script: Script = [
        (30, {"name": "beh__echo", "arguments": {"text": "x", "n": float("nan")}}),
        (31, {"name": "beh__echo", "arguments": {"text": "x", "deep": [{"n": float("-inf")}]}}),
    ]
    messages, _log = await run_script(tmp_path / "gw", settings, script)
    for answer in messages:
        result = answer["result"]
        assert result["isError"] is True
        assert "arguments hold NaN or Infinity, which JSON cannot carry" in result["content"][0]["text"]
    with closing(sqlite3.connect(tmp_path / "gw" / "var" / "audit.db")) as db:
        rows = [json.loads(r[0]) for r in db.execute("SELECT record FROM entries WHERE kind = 'decision'")]
    assert [(r["decision"], r["rules"]) for r in rows] == [("BLOCK", ["invalid-arguments"])] * 2
    assert all(len(r["args_digest"]) == 64 for r in rows)


async def test_messages_the_sdk_does_not_read_as_calls_are_never_run(tmp_path: Path) -> None:
    """A ``tools/call`` carrying an ``error`` member (the SDK reads an error response) is
    neither run nor answered; one whose params are a list is refused as an invalid request
    (:mod:`mcp_guard.malformed`), with or without the lane."""
    strange = [
        {
            "jsonrpc": "2.0",
            "id": 60,
            "method": "tools/call",
            "params": {"name": "beh__echo", "arguments": {"text": "x"}},
            "error": {"code": 1, "message": "m"},
        },
        {"jsonrpc": "2.0", "id": 61, "method": "tools/call", "params": [1]},
    ]
    seen: dict[str, list[dict[str, Any]]] = {}
    for name, settings in (("lane", LOCAL_SETTINGS), ("sdk", LANE_OFF)):
        folder = tmp_path / name
        await anyio.Path(folder).mkdir()
        process, peer = await start_gateway(folder, settings)
        try:
            with anyio.fail_after(30):
                for message in strange:
                    await peer.send(message)
                await peer.send({"jsonrpc": "2.0", "id": 62, "method": "ping"})
                seen[name] = [await peer.receive()]
                while seen[name][-1].get("id") != 62:
                    seen[name].append(await peer.receive())
        finally:
            process.terminate()
            await process.wait()
    refused = {"code": -32600, "message": 'Invalid request: "params" must be an object'}
    assert (
        seen["lane"]
        == seen["sdk"]
        == [{"jsonrpc": "2.0", "id": 61, "error": refused}, {"jsonrpc": "2.0", "id": 62, "result": {}}]
    )
