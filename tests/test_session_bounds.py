"""One principal cannot take every transport session: ``server.max_sessions_per_principal``
over real uvicorn, raw HTTP requests, and the SDK's own ``server.max_sessions``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest

from mcp_guard.assemble import http_app
from mcp_guard.config.settings import GatewaySettings
from mcp_guard.gateway import Gateway
from mcp_guard.session_bounds import SessionLedger
from tests.harness import (
    FAST_BACKOFF,
    INITIALIZE_REQUEST,
    MCP_POST_HEADERS,
    behaviour_upstream,
    serve_http,
    with_private_state,
)

pytestmark = pytest.mark.anyio

SECRET = "session-bound-tests-secret-0123456789abcdef"
ISSUER = "https://idp.test"
AUDIENCE = "http://127.0.0.1:8765/mcp"
AUTH = {"issuer": ISSUER, "audience": AUDIENCE, "keys": [{"secret": SECRET, "algorithms": ["HS256"]}]}


def as_user(user: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    return {**MCP_POST_HEADERS, "Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


ANYONE = MCP_POST_HEADERS


@asynccontextmanager
async def gateway_url(tmp_path: Path, *, auth: bool = True, **server: Any) -> AsyncIterator[str]:
    identity: dict[str, Any] = {"auth": AUTH} if auth else {"local_principal": {"user": "local-developer"}}
    settings = GatewaySettings.model_validate({**identity, "server": server})
    gateway = Gateway(behaviour_upstream(tmp_path), with_private_state(settings), backoff=FAST_BACKOFF)
    async with serve_http(http_app(gateway)) as url:
        yield url


async def open_session(http: httpx2.AsyncClient, headers: dict[str, str]) -> httpx2.Response:
    return await http.post("/mcp", json=INITIALIZE_REQUEST, headers=headers)


async def session_of(http: httpx2.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """Open a session; the headers of requests in it."""
    opened = await open_session(http, headers)
    assert opened.status_code == 200, opened.text
    session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await http.post("/mcp", json=initialized, headers=session)).status_code == 202
    return session


async def answers_ping(http: httpx2.AsyncClient, session: dict[str, str]) -> bool:
    ping = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "ping"}, headers=session)
    return ping.status_code == 200


async def test_at_max_sessions_the_sdk_refuses_another_session_with_503_and_closes_none(
    tmp_path: Path,
) -> None:
    async with (
        gateway_url(tmp_path, max_sessions=2, max_sessions_per_principal=1) as url,
        httpx2.AsyncClient(base_url=url) as http,
    ):
        fiona = await session_of(http, as_user("fiona"))
        sam = await session_of(http, as_user("sam"))
        refused = await open_session(http, as_user("kim"))
        still_open = [await answers_ping(http, fiona), await answers_ping(http, sam)]
    assert refused.status_code == 503
    assert refused.json()["error"]["message"] == "Too many open sessions"
    assert still_open == [True, True]


async def test_a_principal_at_its_bound_is_refused_with_429_naming_it_and_others_still_open_sessions(
    tmp_path: Path,
) -> None:
    async with (
        gateway_url(tmp_path, max_sessions=10, max_sessions_per_principal=2) as url,
        httpx2.AsyncClient(base_url=url) as http,
    ):
        fiona = [await session_of(http, as_user("fiona")) for _ in range(2)]
        refused = await open_session(http, as_user("fiona"))
        refused_again = await open_session(http, as_user("fiona"))
        sam = await session_of(http, as_user("sam"))
        still_open = [await answers_ping(http, s) for s in [*fiona, sam]]
    assert refused.status_code == refused_again.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == -32600
    assert "server.max_sessions_per_principal" in error["message"] and "holds 2" in error["message"]
    assert error["data"] == {"max_sessions_per_principal": 2}
    assert still_open == [True, True, True]


async def test_a_session_ended_with_delete_gives_its_principal_place_back(tmp_path: Path) -> None:
    async with (
        gateway_url(tmp_path, max_sessions_per_principal=1) as url,
        httpx2.AsyncClient(base_url=url) as http,
    ):
        first = await session_of(http, as_user("fiona"))
        refused = await open_session(http, as_user("fiona"))
        deleted = await http.delete("/mcp", headers=first)
        reopened = await open_session(http, as_user("fiona"))
    assert (refused.status_code, deleted.status_code, reopened.status_code) == (429, 200, 200)


async def test_a_request_that_opens_no_session_gives_its_place_back(tmp_path: Path) -> None:
    async with (
        gateway_url(tmp_path, max_sessions_per_principal=1) as url,
        httpx2.AsyncClient(base_url=url) as http,
    ):
        no_session = await http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=as_user("fiona")
        )
        opened = await open_session(http, as_user("fiona"))
    assert no_session.status_code == 400  # the SDK names a session even here, then forgets it
    assert opened.status_code == 200


async def test_a_session_that_idles_out_gives_its_principal_place_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    idled_out = anyio.Event()

    class IdleTimeouts(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().endswith("idle timeout"):
                idled_out.set()

    caplog.set_level(logging.INFO, logger="mcp.server.streamable_http_manager")
    watcher = IdleTimeouts()
    logging.getLogger("mcp.server.streamable_http_manager").addHandler(watcher)
    try:
        async with (
            gateway_url(tmp_path, max_sessions_per_principal=1, session_idle_timeout_s=0.2) as url,
            httpx2.AsyncClient(base_url=url) as http,
        ):
            await session_of(http, as_user("fiona"))
            refused = await open_session(http, as_user("fiona"))
            with anyio.fail_after(10):
                await idled_out.wait()
            reopened = await open_session(http, as_user("fiona"))
    finally:
        logging.getLogger("mcp.server.streamable_http_manager").removeHandler(watcher)
    assert (refused.status_code, reopened.status_code) == (429, 200)


async def test_an_sse_stream_holds_a_place_under_its_principals_bound_while_it_is_open(
    tmp_path: Path,
) -> None:
    async with (
        gateway_url(tmp_path, max_sessions_per_principal=1) as url,
        httpx2.AsyncClient(base_url=url) as http,
    ):
        streamable = await session_of(http, as_user("fiona"))
        sse_refused = await http.get("/sse", headers=as_user("fiona"))
        await http.delete("/mcp", headers=streamable)
        async with http.stream("GET", "/sse", headers=as_user("fiona")) as stream:
            streamable_refused = await open_session(http, as_user("fiona"))
            others_open = await open_session(http, as_user("sam"))
    assert sse_refused.status_code == 429
    assert "server.max_sessions_per_principal" in sse_refused.json()["error"]["message"]
    assert stream.status_code == 200
    assert (streamable_refused.status_code, others_open.status_code) == (429, 200)


async def test_without_auth_every_client_shares_the_local_principals_bound(tmp_path: Path) -> None:
    async with (
        gateway_url(tmp_path, auth=False, max_sessions_per_principal=1) as url,
        httpx2.AsyncClient(base_url=url) as one,
        httpx2.AsyncClient(base_url=url) as another,
    ):
        opened = await open_session(one, ANYONE)
        refused = await open_session(another, ANYONE)
    assert (opened.status_code, refused.status_code) == (200, 429)


def test_places_of_sessions_the_sdk_forgot_are_given_back_and_a_sweep_drops_principals_that_left() -> None:
    open_sessions = {"a1", "a2", "b1"}
    ledger = SessionLedger(2, is_open=open_sessions.__contains__, sweep_above=1)
    for key, session in [("a", "a1"), ("a", "a2"), ("b", "b1")]:
        claim = ledger.claim(key)
        assert claim is not None
        claim.session_id = session
    at_bound = ledger.claim("a")
    open_sessions -= {"a1", "b1"}
    after_a1_ended = ledger.claim("a")  # two principals hold places: a sweep finds b holds none
    swept = set(ledger._held)
    pending = ledger.claim("c")
    assert at_bound is None and after_a1_ended is not None and pending is not None
    assert swept == {"a"}
    assert (ledger.held_by("a"), ledger.held_by("b"), ledger.held_by("c")) == (2, 0, 1)
    ledger.release("c", pending)
    assert set(ledger._held) == {"a"}
