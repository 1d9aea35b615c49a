"""Clients reach the gateway over streamable HTTP and SSE; upstreams are reached over both too."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server._otel import OpenTelemetryMiddleware
from opentelemetry import trace

from mcp_guard.assemble import http_app
from mcp_guard.config.settings import GatewaySettings, ServerSettings
from mcp_guard.gateway import Gateway
from mcp_guard.principal import LOCAL_PRINCIPAL
from mcp_guard.server import GuardServer
from mcp_guard.transports import build_http_app
from tests.harness import (
    FAST_BACKOFF,
    INITIALIZE_REQUEST,
    MCP_POST_HEADERS,
    behaviour_upstream,
    gateway_client,
    serve_http,
    server_process,
    with_private_state,
    write_upstreams,
)
from tests.servers import behaviour

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def http_gateway(tmp_path: Path, settings: GatewaySettings | None = None) -> AsyncIterator[str]:
    gateway = Gateway(behaviour_upstream(tmp_path), with_private_state(settings), backoff=FAST_BACKOFF)
    app = build_http_app(gateway, resolve_principal=lambda scope: LOCAL_PRINCIPAL)
    async with serve_http(app) as url:
        yield url


async def test_a_client_calls_tools_through_the_gateway_over_streamable_http(tmp_path: Path) -> None:
    async with (
        http_gateway(tmp_path) as url,
        streamable_http_client(f"{url}/mcp") as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("beh__echo", {"text": "over http"})
    assert "beh__echo" in names
    assert isinstance(result, types.CallToolResult) and result.structured_content == {"echo": "over http"}


async def test_with_json_responses_a_call_over_streamable_http_is_answered_with_one_json_body(
    tmp_path: Path,
) -> None:
    settings = GatewaySettings(server=ServerSettings(json_responses=True))
    async with http_gateway(tmp_path, settings) as url, httpx2.AsyncClient(base_url=url) as http:
        hello = await http.post("/mcp", json=INITIALIZE_REQUEST, headers=MCP_POST_HEADERS)
        session = {**MCP_POST_HEADERS, "mcp-session-id": hello.headers["mcp-session-id"]}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await http.post("/mcp", json=initialized, headers=session)
        call = {"name": "beh__echo", "arguments": {"text": "as json"}}
        answer = await http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}, headers=session
        )
        async with (  # and the SDK's own client works with it
            streamable_http_client(f"{url}/mcp") as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            result = await client.call_tool("beh__echo", {"text": "sdk client"})
            progressing = await client.call_tool("beh__progress", {}, progress_callback=ignore_progress)
    assert hello.headers["content-type"] == answer.headers["content-type"] == "application/json"
    assert answer.json()["result"]["structuredContent"] == {"echo": "as json"}
    assert result.structured_content == {"echo": "sdk client"}
    assert progressing.content[0].text == "done"  # its progress has no wire here, the call still works


async def ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    pass


async def test_a_client_calls_tools_through_the_gateway_over_sse(tmp_path: Path) -> None:
    async with (
        http_gateway(tmp_path) as url,
        sse_client(f"{url}/sse") as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        result = await client.call_tool("beh__echo", {"text": "over sse"})
    assert isinstance(result, types.CallToolResult) and result.structured_content == {"echo": "over sse"}


async def test_a_foreign_host_header_is_refused_against_dns_rebinding(tmp_path: Path) -> None:
    async with http_gateway(tmp_path) as url, httpx2.AsyncClient() as http:
        evil_host = await http.post(
            f"{url}/mcp", json=INITIALIZE_REQUEST, headers={**MCP_POST_HEADERS, "Host": "evil.example:8765"}
        )
        evil_origin = await http.post(
            f"{url}/mcp",
            json=INITIALIZE_REQUEST,
            headers={**MCP_POST_HEADERS, "Origin": "http://evil.example"},
        )
        good = await http.post(f"{url}/mcp", json=INITIALIZE_REQUEST, headers=MCP_POST_HEADERS)
    assert evil_host.status_code == 421
    assert evil_origin.status_code == 403
    assert good.status_code == 200


async def test_a_request_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    settings = GatewaySettings(server=ServerSettings(max_body_bytes=2048))
    async with http_gateway(tmp_path, settings) as url, httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 5000}}
        response = await http.post(
            f"{url}/mcp",
            json=body,
            headers=MCP_POST_HEADERS,
        )
    assert response.status_code == 413


async def test_garbage_json_rpc_gets_a_parse_error_and_the_gateway_keeps_serving(tmp_path: Path) -> None:
    async with http_gateway(tmp_path) as url:
        async with httpx2.AsyncClient() as http:
            response = await http.post(
                f"{url}/mcp",
                content=b"{not json",
                headers=MCP_POST_HEADERS,
            )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32700
        async with (
            streamable_http_client(f"{url}/mcp") as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            assert (await client.list_tools()).tools


UNREADABLE_BODIES: list[tuple[bytes, int | None, str]] = [
    (b'{"id": 10, "method": "tools/list"}', 10, 'Invalid request: "jsonrpc" must be "2.0"'),
    (
        b'{"jsonrpc": "2.0", "id": 11, "method": "tools/list", "params": [1]}',
        11,
        '"params" must be an object',
    ),
    (
        b'{"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": {"a": "\\ud800"}}',
        12,
        "lone surrogate",
    ),
    (b'{"jsonrpc": "2.0", "id": 9.5, "method": "tools/list"}', None, '"id" must be a string or an integer'),
    (b"[]", None, "a JSON array (a batch)"),
]
"""Bodies the SDK refuses without naming the fault or the id (or, for id 9.5, accepts as a
notification), with the id and the words of mcp-guard's answer."""


async def test_an_unreadable_body_is_refused_naming_its_fault_and_id_over_both_http_transports(
    tmp_path: Path,
) -> None:
    answers: dict[str, list[httpx2.Response]] = {"streamable": [], "sse": []}
    async with http_gateway(tmp_path) as url, httpx2.AsyncClient(timeout=30) as http:
        init = await http.post(f"{url}/mcp", json=INITIALIZE_REQUEST, headers=MCP_POST_HEADERS)
        session = {**MCP_POST_HEADERS, "mcp-session-id": init.headers["mcp-session-id"]}
        for body, _, _ in UNREADABLE_BODIES:
            answers["streamable"].append(await http.post(f"{url}/mcp", content=body, headers=session))
        async with http.stream("GET", f"{url}/sse") as events:
            lines = events.aiter_lines()
            endpoint = ""
            while not endpoint.startswith("/messages/"):
                endpoint = (await anext(lines)).removeprefix("data: ")
            for body, _, _ in UNREADABLE_BODIES:
                answers["sse"].append(
                    await http.post(f"{url}{endpoint}", content=body, headers=MCP_POST_HEADERS)
                )
        still_served = await http.post(
            f"{url}/mcp", json={"jsonrpc": "2.0", "id": 13, "method": "ping"}, headers=session
        )
    for transport, responses in answers.items():
        for response, (_, request_id, words) in zip(responses, UNREADABLE_BODIES, strict=True):
            assert response.status_code == 400, transport
            assert response.headers["content-type"] == "application/json"
            error = response.json()
            assert error["id"] == request_id, (transport, error)
            assert error["error"]["code"] == -32600
            assert words in error["error"]["message"], (transport, error)
    assert still_served.status_code == 200 and '"id":13' in still_served.text


async def test_the_health_endpoint_counts_ready_upstreams_without_naming_them(tmp_path: Path) -> None:
    async with http_gateway(tmp_path) as url, httpx2.AsyncClient() as http:
        health = (await http.get(f"{url}/healthz")).json()
    assert health == {"status": "ok", "upstreams": {"ready": 1, "total": 1}}


@asynccontextmanager
async def operator_gateway(tmp_path: Path, settings: dict[str, Any] | None = None) -> AsyncIterator[str]:
    """The assembled HTTP app, operator routes included, acting as a local principal."""
    config = GatewaySettings.model_validate({"local_principal": {"user": "me"}, **(settings or {})})
    gateway = Gateway(behaviour_upstream(tmp_path), with_private_state(config), backoff=FAST_BACKOFF)
    async with serve_http(http_app(gateway)) as url:
        yield url


async def test_the_operator_health_view_reports_each_upstream_to_the_local_principal(tmp_path: Path) -> None:
    async with operator_gateway(tmp_path) as url, httpx2.AsyncClient() as http:
        health = (await http.get(f"{url}/admin/health")).json()
    assert health["status"] == "ok"
    assert health["upstreams"]["beh"]["status"] == "ready"
    assert health["upstreams"]["beh"]["tools"] == len(behaviour.TOOLS)


def demo_over_http(transport: str) -> AbstractContextManager[int]:
    """A bundled demo upstream served over HTTP by its own process; yields its port."""
    return server_process(
        lambda port: [
            sys.executable,
            "-m",
            "mcp_guard.demo",
            "bank",
            "--transport",
            transport,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("transport", "kind", "path"), [("streamable-http", "streamable-http", "/mcp"), ("sse", "sse", "/sse")]
)
async def test_upstreams_over_http_are_aggregated_and_called(
    tmp_path: Path, transport: str, kind: str, path: str
) -> None:
    with demo_over_http(transport) as port:
        upstreams = write_upstreams(
            tmp_path,
            f"""
upstreams:
  bank:
    type: {kind}
    url: http://127.0.0.1:{port}{path}
    connect_timeout_s: 5
""",
        )
        async with gateway_client(upstreams) as (gateway, client):
            from mcp_guard.upstreams.supervisor import Status
            from tests.harness import wait_for_status

            await wait_for_status(gateway, "bank", Status.READY, timeout_s=30)
            result = await client.call_tool("bank__get_balance", {"account": "ACC-1001"})
    assert isinstance(result, types.CallToolResult)
    assert result.structured_content == {"account": "ACC-1001", "balance": 25000.0, "currency": "EUR"}


def test_the_module_entry_point_prints_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mcp_guard", "--help"], capture_output=True, text=True, check=True
    )
    assert "serve" in out.stdout


async def test_the_operator_api_refuses_a_foreign_host_or_origin_as_mcp_does(tmp_path: Path) -> None:
    """A web page reaching the gateway through a rebound DNS name must not read the
    operator API as the local principal."""
    async with operator_gateway(tmp_path) as url, httpx2.AsyncClient(base_url=url) as http:
        rebound = await http.get("/admin/approvals", headers={"Host": "attacker.example:8765"})
        cross_site = await http.get("/admin/health", headers={"Origin": "http://attacker.example"})
        same_machine = await http.get("/admin/approvals", headers={"Origin": "http://127.0.0.1:8765"})
    assert rebound.status_code == 421
    assert cross_site.status_code == 403
    assert same_machine.status_code == 200


async def test_the_health_endpoint_shows_circuit_breakers_to_operators(tmp_path: Path) -> None:
    settings = {
        "controls": {"breakers": [{"id": "beh-breaker", "upstreams": ["beh"], "consecutive_failures": 3}]}
    }
    async with operator_gateway(tmp_path, settings) as url, httpx2.AsyncClient() as http:
        async with (
            streamable_http_client(f"{url}/mcp") as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            await client.call_tool("beh__echo", {"text": "x"})
        health = (await http.get(f"{url}/admin/health")).json()
    assert health["status"] == "ok"
    assert [(b["breaker"], b["state"]) for b in health["breakers"]] == [("beh-breaker", "closed")]


def test_request_spans_are_opened_only_when_a_tracer_provider_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def traced(server: GuardServer) -> bool:
        return any(isinstance(m, OpenTelemetryMiddleware) for m in server.middleware)

    assert not traced(GuardServer("mcp-guard"))  # nobody collects spans: none are made
    monkeypatch.setattr(trace, "get_tracer_provider", SdkLikeProvider)
    assert traced(GuardServer("mcp-guard"))


class SdkLikeProvider(trace.TracerProvider):
    """Stands in for opentelemetry-sdk's provider (not installed here)."""

    def get_tracer(self, *args: object, **kwargs: object) -> trace.Tracer:
        return trace.NoOpTracer()


async def test_an_sse_client_cannot_name_the_session_its_calls_are_recorded_under(tmp_path: Path) -> None:
    settings = GatewaySettings(state_dir=tmp_path / "state")
    forged = {"mcp-session-id": "FORGED-SESSION-1"}
    async with (
        http_gateway(tmp_path, settings) as url,
        sse_client(f"{url}/sse", headers=forged) as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        await client.call_tool("beh__echo", {"text": "who am I"})
    (audit,) = (tmp_path / "state").rglob("audit.db")
    with closing(sqlite3.connect(audit)) as db:
        rows = db.execute("SELECT record FROM entries WHERE kind = 'decision'").fetchall()
    (record,) = [json.loads(r[0]) for r in rows]
    assert record["session"] != "FORGED-SESSION-1"
    assert len(record["session"]) == 32  # the SSE transport's own session id (a UUID's hex)
