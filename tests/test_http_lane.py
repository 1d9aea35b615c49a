"""The streamable-HTTP lane: a ``tools/call`` POST answered without the SDK's session, exactly
as the SDK would answer it, and every other request left to the SDK. Real uvicorn servers on
127.0.0.1, a real upstream process, raw HTTP requests and the SDK's own client."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_guard import http_lane
from mcp_guard.assemble import http_app
from mcp_guard.config.settings import GatewaySettings, ServerSettings
from mcp_guard.gateway import Gateway
from mcp_guard.http_lane import HttpCallLane
from mcp_guard.principal import LOCAL_PRINCIPAL
from mcp_guard.transports import build_http_app
from tests.harness import FAST_BACKOFF, INITIALIZE_REQUEST, MCP_POST_HEADERS, behaviour_upstream, serve_http
from tests.test_governance import ALEX, FIONA, bearer, demo_gateway_with_tokens
from tests.test_stdio_lane import SCRIPT

pytestmark = pytest.mark.anyio

CALLS = SCRIPT  # the calls the stdio lane is checked with, each a different way to end


class SeenBySdk:
    """ASGI middleware noting the JSON-RPC methods of the POSTs that reach the SDK's app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.methods: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""

        async def noting() -> Any:
            nonlocal body
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    self.methods.append(str(parsed.get("method")))
            return message

        await self.app(scope, noting, send)


def the_lane(app: Starlette) -> HttpCallLane:
    (route,) = [r for r in app.routes if isinstance(r, Route) and r.path == "/mcp"]
    lane = route.endpoint
    assert isinstance(lane, HttpCallLane)
    return lane


@asynccontextmanager
async def http_gateway(
    folder: Path, *, lane: bool = True, json_responses: bool = False, max_body_bytes: int = 4 << 20
) -> AsyncIterator[tuple[str, Starlette]]:
    await anyio.Path(folder).mkdir(exist_ok=True)
    server = ServerSettings(json_responses=json_responses, max_body_bytes=max_body_bytes)
    settings = GatewaySettings(server=server, state_dir=folder / "state")
    gateway = Gateway(behaviour_upstream(folder), settings, backoff=FAST_BACKOFF)
    app = build_http_app(gateway, resolve_principal=lambda scope: LOCAL_PRINCIPAL, call_lane=lane)
    async with serve_http(app) as url:
        yield url, app


async def open_session(http: httpx2.AsyncClient) -> dict[str, str]:
    """Headers of a confirmed session's requests."""
    hello = await http.post("/mcp", json=INITIALIZE_REQUEST, headers=MCP_POST_HEADERS)
    session = {**MCP_POST_HEADERS, "mcp-session-id": hello.headers["mcp-session-id"]}
    initialized = await http.post(
        "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
    )
    assert initialized.status_code == 202
    return {**session, "mcp-protocol-version": "2025-11-25"}


def comparable(response: httpx2.Response, session_id: str) -> tuple[int, list[tuple[str, str]], str]:
    """Status, headers and body with what differs between two gateways (session ids, the
    session a request without one opens, audit ids, dates) masked."""
    headers = [(k, "SID" if k == "mcp-session-id" else v) for k, v in response.headers.items() if k != "date"]
    body = response.text.replace(session_id, "SID")
    body = re.sub(r'"audit_id":"[0-9a-f]+"', '"audit_id":"ID"', body)
    return response.status_code, headers, body


async def transcript(url: str) -> tuple[list[tuple[int, list[tuple[str, str]], str]], str]:
    """Each call's answer, in a session of its own; and the session id."""
    seen = []
    async with httpx2.AsyncClient(base_url=url) as http:
        session = await open_session(http)
        sid = session["mcp-session-id"]
        for request_id, params in CALLS:
            call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
            seen.append(comparable(await http.post("/mcp", json=call, headers=session), sid))
    return seen, sid


def audited(folder: Path, session_id: str) -> list[dict[str, Any]]:
    """The audit log's decision records, their ids and timings left out, the session masked."""
    (audit,) = (folder / "state").rglob("audit.db")
    with closing(sqlite3.connect(audit)) as db:
        rows = db.execute("SELECT record FROM entries WHERE kind = 'decision' ORDER BY rowid").fetchall()
    records = [json.loads(row[0]) for row in rows]
    for record in records:
        for key in ("id", "time", "duration_ms", "prev", "hash", "stage_us"):
            record.pop(key, None)
    return json.loads(json.dumps(records).replace(session_id, "SID"))


@pytest.mark.parametrize("json_responses", [False, True], ids=["sse", "json"])
async def test_the_lane_answers_every_call_exactly_as_the_sdk_does(
    tmp_path: Path, json_responses: bool
) -> None:
    async with http_gateway(tmp_path / "lane", json_responses=json_responses) as (url, app):
        lane = the_lane(app)
        spy = SeenBySdk(lane.app)
        lane.app = spy
        laned, laned_session = await transcript(url)
    async with http_gateway(tmp_path / "sdk", lane=False, json_responses=json_responses) as (url, _):
        sdk, sdk_session = await transcript(url)
    assert "tools/call" not in spy.methods and "initialize" in spy.methods
    assert laned == sdk
    assert any("notifications/progress" in body for _, _, body in laned) != json_responses
    # the same principal, session and client info reached Gateway.call_tool, with the same outcome
    assert audited(tmp_path / "lane", laned_session) == audited(tmp_path / "sdk", sdk_session)


def decided(folder: Path, tool: str) -> bool:
    """Whether the audit log holds a decision on a call of ``tool``."""
    (audit,) = (folder / "state").rglob("audit.db")
    with closing(sqlite3.connect(audit)) as db:
        rows = db.execute("SELECT record FROM entries WHERE kind = 'decision'").fetchall()
    return any(json.loads(row[0]).get("tool") == tool for row in rows)


async def echo(http: httpx2.AsyncClient, session: dict[str, str]) -> None:
    """One call's round trip, through the same upstream as the others."""
    call = {
        "jsonrpc": "2.0",
        "id": "echo",
        "method": "tools/call",
        "params": {"name": "beh__echo", "arguments": {}},
    }
    assert (await http.post("/mcp", json=call, headers=session)).status_code == 200


HANG = {
    "jsonrpc": "2.0",
    "id": 50,
    "method": "tools/call",
    "params": {"name": "beh__hang", "arguments": {"tag": "t"}},
}
CANCEL = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 50}}


@pytest.mark.parametrize("json_responses", [False, True], ids=["sse", "json"])
@pytest.mark.parametrize("lane", [True, False], ids=["lane", "sdk"])
async def test_a_call_the_client_cancels_is_cancelled_upstream_and_answered_request_cancelled(
    tmp_path: Path, lane: bool, json_responses: bool
) -> None:
    answer: dict[str, httpx2.Response] = {}
    async with (
        http_gateway(tmp_path, lane=lane, json_responses=json_responses) as (url, _),
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        session = await open_session(http)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    answer["hang"] = await http.post("/mcp", json=HANG, headers=session)

                tg.start_soon(call)
                cancelled = []
                while not (tmp_path / "cancelled-t").exists():  # until the call was in flight when cancelled
                    cancelled.append(await http.post("/mcp", json=CANCEL, headers=session))
                    await echo(http, session)
    expected = {"jsonrpc": "2.0", "id": 50, "error": {"code": -32800, "message": "Request cancelled"}}
    hang = answer["hang"]
    body = hang.json() if json_responses else json.loads(hang.text.split("data: ", 1)[1])
    assert (hang.status_code, body) == (200, expected)
    assert {(c.status_code, c.headers["content-type"], c.content) for c in cancelled} == {
        (202, "application/json", b"")
    }


@pytest.mark.parametrize("json_responses", [False, True], ids=["sse", "json"])
@pytest.mark.parametrize("lane", [True, False], ids=["lane", "sdk"])
async def test_a_call_whose_client_drops_its_post_is_cancelled_upstream(
    tmp_path: Path, lane: bool, json_responses: bool
) -> None:
    async with (
        http_gateway(tmp_path, lane=lane, json_responses=json_responses) as (url, _),
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
        httpx2.AsyncClient(base_url=url, timeout=30) as dropping,
    ):
        session = await open_session(http)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await dropping.post("/mcp", json=HANG, headers=session)

                tg.start_soon(call)
                while not decided(tmp_path, "beh__hang"):
                    await echo(http, session)
                await echo(http, session)  # the upstream has read the call: it hangs
                tg.cancel_scope.cancel()  # the client closes the connection
            while not (tmp_path / "cancelled-t").exists():
                await echo(http, session)


@pytest.mark.parametrize("json_responses", [False, True], ids=["sse", "json"])
async def test_a_call_answered_in_full_is_not_taken_for_one_its_client_dropped(
    tmp_path: Path, json_responses: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn reports a request it has answered as disconnected to a receive still waiting
    caplog.set_level(logging.INFO, logger=http_lane.__name__)
    async with (
        http_gateway(tmp_path, json_responses=json_responses) as (url, _),
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        session = await open_session(http)
        for _ in range(5):
            await echo(http, session)
    assert decided(tmp_path, "beh__echo")
    assert [r.getMessage() for r in caplog.records if r.name == http_lane.__name__] == []


async def test_progress_reaches_the_sdk_client_through_the_lane(tmp_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def note(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with (
        http_gateway(tmp_path) as (url, app),
        streamable_http_client(f"{url}/mcp") as (read, write),
        ClientSession(read, write) as client,
    ):
        lane = the_lane(app)
        spy = SeenBySdk(lane.app)
        lane.app = spy
        await client.initialize()
        result = await client.call_tool("beh__progress", {}, progress_callback=note)
    assert "tools/call" not in spy.methods
    assert result.content[0].text == "done"  # type: ignore[union-attr]
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


def call_with(request_id: int, text: str = "x") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "beh__echo", "arguments": {"text": text}},
    }


async def answers_to_requests_the_lane_leaves(url: str) -> list[tuple[int, list[tuple[str, str]], str]]:
    seen = []
    async with httpx2.AsyncClient(base_url=url) as http:
        session = await open_session(http)
        sid = session["mcp-session-id"]
        plain = {k: v for k, v in session.items() if k != "mcp-session-id"}
        posts: list[tuple[dict[str, str], bytes]] = [
            ({**session, "Host": "evil.example:8765"}, json.dumps(call_with(1)).encode()),
            ({**session, "Origin": "http://evil.example"}, json.dumps(call_with(2)).encode()),
            (plain, json.dumps(call_with(3)).encode()),  # no session
            ({**session, "mcp-session-id": "0" * 32}, json.dumps(call_with(4)).encode()),  # an unknown one
            (session, json.dumps([call_with(5)]).encode()),  # a batch
            (session, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()),
            (session, json.dumps(CANCEL).encode()),  # naming no call in flight
            (session, json.dumps({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}).encode()),
            ({**session, "Accept": "application/json"}, json.dumps(call_with(7)).encode()),
            ({**session, "Accept": "text/event-stream"}, json.dumps(call_with(8)).encode()),
            ({**session, "Content-Type": "text/plain"}, json.dumps(call_with(9)).encode()),
            ({**session, "Content-Type": "application/json-seq"}, json.dumps(call_with(10)).encode()),
            (session, json.dumps(call_with(11, "x" * 2000)).encode()),  # over max_body_bytes
            ({**session, "mcp-protocol-version": "2026-07-28"}, json.dumps(call_with(12)).encode()),
            (session, b'{"jsonrpc": "2.0", "id": 13, "method": "tools/call", "params": '),  # not JSON
            (session, json.dumps({**call_with(0), "id": 14.5}).encode()),  # an id the SDK misreads
            (session, json.dumps({**call_with(15), "params": [1]}).encode()),
            (session, json.dumps({**call_with(16), "jsonrpc": "1.0"}).encode()),
        ]
        for headers, body in posts:
            seen.append(comparable(await http.post("/mcp", content=body, headers=headers), sid))
        seen.append(comparable(await http.delete("/mcp", headers=session), sid))
        seen.append(comparable(await http.post("/mcp", json=call_with(17), headers=session), sid))  # ended
    return seen


@pytest.mark.parametrize("json_responses", [False, True], ids=["sse", "json"])
async def test_requests_the_lane_does_not_take_get_exactly_the_sdks_answer(
    tmp_path: Path, json_responses: bool
) -> None:
    async with http_gateway(tmp_path / "lane", json_responses=json_responses, max_body_bytes=1000) as (
        url,
        _,
    ):
        laned = await answers_to_requests_the_lane_leaves(url)
    async with http_gateway(
        tmp_path / "sdk", lane=False, json_responses=json_responses, max_body_bytes=1000
    ) as (
        url,
        _,
    ):
        sdk = await answers_to_requests_the_lane_leaves(url)
    assert [answer[0] for answer in laned] == [answer[0] for answer in sdk]
    assert laned == sdk


async def ended_while_a_call_runs(folder: Path, *, lane: bool, json_responses: bool) -> tuple[int, str, str]:
    """The answer to a call whose client ends the session (DELETE) while it runs, once the
    call has been cancelled upstream."""
    async with (
        http_gateway(folder, lane=lane, json_responses=json_responses) as (url, _),
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        session, other = await open_session(http), await open_session(http)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    answer = await http.post("/mcp", json=HANG, headers=session)
                    hang.append((answer.status_code, answer.headers["content-type"], answer.text))

                hang: list[tuple[int, str, str]] = []
                tg.start_soon(call)
                while not decided(folder, "beh__hang"):
                    await echo(http, other)
                await echo(http, other)  # the upstream has read the call: it hangs
                assert (await http.delete("/mcp", headers=session)).status_code == 200
            while not (folder / "cancelled-t").exists():
                await echo(http, other)
    return hang[0]


@pytest.mark.parametrize("json_responses", [False, True], ids=["sse", "json"])
async def test_a_call_whose_session_ends_is_cancelled_upstream_and_answered_as_the_sdk_answers(
    tmp_path: Path, json_responses: bool
) -> None:
    laned = await ended_while_a_call_runs(tmp_path / "lane", lane=True, json_responses=json_responses)
    sdk = await ended_while_a_call_runs(tmp_path / "sdk", lane=False, json_responses=json_responses)
    assert laned == sdk
    assert laned[0] == (500 if json_responses else 200)


@pytest.mark.parametrize("lane", [True, False], ids=["lane", "sdk"])
async def test_an_sse_answer_waiting_for_its_call_sends_keep_alive_comments(
    tmp_path: Path, lane: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_lane, "PING_INTERVAL_S", 0.05)
    monkeypatch.setattr(EventSourceResponse, "DEFAULT_PING_INTERVAL", 0.05)
    async with (
        http_gateway(tmp_path, lane=lane) as (url, _),
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        session = await open_session(http)
        with anyio.fail_after(30):
            async with http.stream("POST", "/mcp", json=HANG, headers=session) as answer:
                first = await anext(answer.aiter_raw())
    assert re.fullmatch(rb": ping - \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00:00\r\n\r\n", first)


async def test_a_call_on_a_session_another_principal_opened_is_refused_as_the_sdk_refuses_it(
    tmp_path: Path,
) -> None:
    gateway = demo_gateway_with_tokens(tmp_path)
    balance = {"name": "bank__get_balance", "arguments": {"account": "ACC-1001"}}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": balance}
    async with serve_http(http_app(gateway)) as url, httpx2.AsyncClient(base_url=url) as http:
        opened = await http.post(
            "/mcp", json=INITIALIZE_REQUEST, headers={**MCP_POST_HEADERS, **bearer(FIONA)}
        )
        session = {**MCP_POST_HEADERS, "mcp-session-id": opened.headers["mcp-session-id"]}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await http.post("/mcp", json=initialized, headers={**session, **bearer(FIONA)})
        stolen = await http.post("/mcp", json=call, headers={**session, **bearer(ALEX)})
        owned = await http.post("/mcp", json=call, headers={**session, **bearer(FIONA)})
    assert (stolen.status_code, stolen.json()["error"]["message"]) == (404, "Session not found")
    assert owned.status_code == 200 and '"id":2,"result"' in owned.text
    (record,) = [
        r for r in audited(tmp_path, session["mcp-session-id"]) if r.get("tool") == "bank__get_balance"
    ]
    assert record["principal"]["user"] == "fiona" and record["session"] == "SID"


async def test_concurrent_calls_in_one_session_each_get_their_own_answer(tmp_path: Path) -> None:
    answers: dict[str, Any] = {}
    async with (
        http_gateway(tmp_path) as (url, _),
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        session = await open_session(http)

        async def call(request_id: int | str) -> None:
            echo = {"name": "beh__echo", "arguments": {"text": repr(request_id)}}
            message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": echo}
            answer = await http.post("/mcp", json=message, headers=session)
            answers[repr(request_id)] = json.loads(answer.text.split("data: ", 1)[1])

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for request_id in (1, "1", "two", 3):
                    tg.start_soon(call, request_id)
    assert sorted(answers) == sorted(["1", "'1'", "'two'", "3"])
    for key, answer in answers.items():
        assert repr(answer["id"]) == key and answer["result"]["structuredContent"] == {"echo": key}
