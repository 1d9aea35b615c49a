"""Calls to a streamable-HTTP upstream take the gateway's own POST (raw_http_calls.py) and
behave as through the SDK's client: every result part, errors, progress, notifications
sent on the call's stream, timeouts cancelled upstream, oversized answers refused.

The upstream is ``tests/servers/behaviour.py --http``, a real server process on
127.0.0.1, answering with SSE streams (the SDK server's default), JSON bodies, or SSE
streams it may close mid-call for the client to resume (SSE polling).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing, suppress
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from anyio.abc import Process
from mcp import ClientSession, types
from mcp.client.session import IncomingMessage, MessageHandlerFnT
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from mcp_guard.gateway import Gateway
from mcp_guard.upstreams.raw_calls import ID_PREFIX
from mcp_guard.upstreams.raw_http_calls import ANSWER_LOST, SESSION_LOST
from mcp_guard.upstreams.supervisor import Status
from tests.harness import (
    BEHAVIOUR,
    free_socket,
    gateway_client,
    serve_http,
    server_process,
    upstream_keys,
    wait_for_status,
    write_upstreams,
)

pytestmark = pytest.mark.anyio
ANSWERS = ["sse", "json"]
FLAGS = {"sse": [], "json": ["--json"], "resumable": ["--resumable"]}


@asynccontextmanager
async def http_gateway(
    tmp_path: Path, answers: str, handler: MessageHandlerFnT | None = None, **extra: str
) -> AsyncIterator[ClientSession]:
    """A gateway (in process) with the behaviour server, in its own process over HTTP, as
    ``beh``, and a client."""
    with server_process(
        lambda port: [sys.executable, BEHAVIOUR, "--http", str(port), *FLAGS[answers]],
        env={"MARKER_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ) as port:
        entry = f"  beh:\n    type: streamable-http\n    url: http://127.0.0.1:{port}/mcp\n"
        upstreams = write_upstreams(tmp_path, f"upstreams:\n{entry}{upstream_keys(extra)}")
        async with gateway_client(upstreams, message_handler=handler) as (gateway, client):
            await wait_for_status(gateway, "beh", Status.READY, timeout_s=30)
            yield client


@pytest.mark.parametrize("answers", ANSWERS)
async def test_a_call_reaches_the_http_upstream_on_the_gateways_own_post_with_every_result_part(
    tmp_path: Path, answers: str
) -> None:
    async with http_gateway(tmp_path, answers) as client:
        result = await client.call_tool("beh__echo", {"text": "hi"}, meta={"trace": "t-1"})
        failed = await client.call_tool("beh__fail", {})
    assert [c.type for c in result.content] == ["text", "image", "audio", "resource_link", "resource"]
    assert result.structured_content == {"echo": "hi"}
    seen = result.meta["upstream/meta"]
    assert seen["seen_meta"] == {"trace": "t-1"}
    assert str(seen["request_id"]).startswith(ID_PREFIX)  # not the SDK session's numbered id
    assert failed.is_error and failed.content[0].text == "it failed"


async def test_progress_on_the_calls_stream_reaches_the_client(tmp_path: Path) -> None:
    steps: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, total, message))

    async with http_gateway(tmp_path, "sse") as client:
        result = await client.call_tool("beh__progress", {}, progress_callback=on_progress)
    assert result.content[0].text == "done"
    assert steps == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_a_tool_list_change_sent_on_the_calls_stream_reaches_the_gateway_and_its_clients(
    tmp_path: Path,
) -> None:
    notices: list[anyio.Event] = [anyio.Event()]

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            notices[-1].set()

    async with http_gateway(tmp_path, "sse", on_message) as client:
        await client.call_tool("beh__add_tool", {})
        with anyio.fail_after(10):  # each notice (the upstream's first listing sends one too) re-lists
            while "beh__added_0" not in {t.name for t in (await client.list_tools()).tools}:
                await notices[-1].wait()
                notices.append(anyio.Event())


async def test_a_call_whose_sse_stream_the_upstream_closes_mid_call_is_resumed_with_its_progress_and_answer(
    tmp_path: Path,
) -> None:
    steps: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, total, message))

    async with http_gateway(tmp_path, "resumable") as client:
        with anyio.fail_after(10):
            result = await client.call_tool("beh__poll", {}, progress_callback=on_progress)
    assert not result.is_error and result.content[0].text == "polled"
    assert steps == [(1, 2, "before the stream closed"), (2, 2, "after the stream closed")]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (405, "SSE stream ended and reconnection attempts were exhausted"),
        (404, ANSWER_LOST),  # the session is gone: the call ran, so it is not sent again
    ],
)
async def test_a_call_whose_stream_closes_and_cannot_be_resumed_fails_with_the_reason(
    tmp_path: Path, status: int, reason: str
) -> None:
    async def refuse_resumption(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with behaviour_upstream_app(tmp_path, resume=refuse_resumption) as (gateway, client):
        upstream = gateway.upstreams["beh"]
        with anyio.fail_after(10):
            result = await client.call_tool("beh__poll", {})
            while status == 404 and upstream.connections < 2:  # a lost session is replaced
                await upstream.changed.wait()
            after = await client.call_tool("beh__echo", {"text": "still here"})
    assert result.is_error and reason in result.content[0].text
    assert after.structured_content == {"echo": "still here"}


async def test_a_calls_sse_stream_cut_off_mid_call_is_resumed_with_its_progress_and_answer(
    tmp_path: Path,
) -> None:
    """The connection of a call's stream breaks after the priming event (a proxy cutting it):
    the gateway resumes the stream and the upstream replays what the call sent since."""
    steps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    async def cut_tool_calls(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:  # the request body, to tell a tools/call from the rest
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        chunks = 0
        replayed = False

        async def replay() -> Any:  # the body once, then what the connection says (a disconnect)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def cutting(message: dict[str, Any]) -> None:
            nonlocal chunks
            if message["type"] == "http.response.body" and b'"tools/call"' in body:
                chunks += 1
                if chunks > 1:  # the priming event went out; cut the connection
                    raise ConnectionAbortedError("cut by a proxy")
            await send(message)

        await app(scope, replay, cutting)

    async with behaviour_upstream_app(tmp_path, before=cut_tool_calls) as (_, client):
        with anyio.fail_after(10):
            result = await client.call_tool("beh__progress", {}, progress_callback=on_progress)
    assert not result.is_error and result.content[0].text == "done"
    assert steps == [1, 2, 3]


async def test_a_call_the_upstream_refuses_for_a_forgotten_session_is_sent_again_in_a_new_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 404 to a request carrying the session means the upstream no longer knows it and did
    not process the request: the gateway starts a new session and sends the request again."""
    forgetting = False

    async def forget_the_session_once(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal forgetting
        if forgetting and scope["method"] == "POST":
            forgetting = False
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    async with behaviour_upstream_app(tmp_path, before=forget_the_session_once) as (gateway, client):
        assert (await client.call_tool("beh__echo", {"text": "one"})).structured_content == {"echo": "one"}
        with anyio.fail_after(10):
            forgetting = True
            again = await client.call_tool("beh__echo", {"text": "two"})
            forgetting = True  # reads through the SDK session are sent again too
            read = await client.read_resource("memo://readme")
            forgetting = True
            prompt = await client.get_prompt("beh__greet", {"who": "Ada"})
        assert gateway.upstreams["beh"].connections == 4
    assert again.structured_content == {"echo": "two"}
    assert read.contents[0].text == "body of memo://readme"  # type: ignore[union-attr]
    assert prompt.messages[0].content.text == "Hello Ada"  # type: ignore[union-attr]
    assert SESSION_LOST in caplog.text


async def test_an_http_upstream_restarted_on_its_port_serves_calls_again_in_a_new_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real thing: the upstream process is stopped and started again (a deployment)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    command = [sys.executable, BEHAVIOUR, "--http", str(port)]
    env = {"MARKER_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    entry = f"  beh:\n    type: streamable-http\n    url: http://127.0.0.1:{port}/mcp\n"
    upstreams = write_upstreams(tmp_path, f"upstreams:\n{entry}")
    async with running(command, env) as first, gateway_client(upstreams) as (gateway, client):
        await wait_for_status(gateway, "beh", Status.READY, timeout_s=30)
        upstream = gateway.upstreams["beh"]
        before = await client.call_tool("beh__echo", {"text": "one"})
        first.terminate()
        await first.wait()
        async with running(command, env):
            with anyio.fail_after(30):
                while True:  # calls fail fast while the port is closed; nothing else to wait on
                    changed = upstream.changed
                    after = await client.call_tool("beh__echo", {"text": "two"})
                    if not after.is_error:
                        break
                    with anyio.move_on_after(0.2):
                        await changed.wait()
        assert upstream.connections == 2
    assert before.structured_content == {"echo": "one"} and after.structured_content == {"echo": "two"}
    assert SESSION_LOST in caplog.text


@pytest.mark.parametrize("answers", ANSWERS)
async def test_a_hanging_http_upstream_times_out_and_the_call_is_cancelled_upstream(
    tmp_path: Path, answers: str
) -> None:
    async with http_gateway(tmp_path, answers, call_timeout_s="0.5") as client:
        with anyio.fail_after(10):
            result = await client.call_tool("beh__hang", {"tag": "h1"})
        assert result.is_error and "did not answer within 0.5s" in result.content[0].text
        with anyio.fail_after(10):
            while not (tmp_path / "cancelled-h1").exists():  # the upstream got notifications/cancelled
                await client.call_tool("beh__echo", {"text": "ping"})


@pytest.mark.parametrize("answers", ANSWERS)
async def test_an_http_answer_over_max_message_bytes_is_refused_and_the_next_call_still_works(
    tmp_path: Path, answers: str
) -> None:
    async with http_gateway(tmp_path, answers, max_message_bytes="8192") as client:
        big = await client.call_tool("beh__echo", {"text": "x" * 20_000})
        small = await client.call_tool("beh__echo", {"text": "ok"})
    refusal = big.content[0].text
    assert big.is_error and "x" * 100 not in refusal
    assert "8192 byte" in refusal and "upstream 'beh' failed" in refusal
    assert small.structured_content == {"echo": "ok"}


async def test_a_call_follows_an_upstream_that_moved_its_endpoint_within_its_origin(tmp_path: Path) -> None:
    from starlette.responses import RedirectResponse

    posts_to_the_old_address = 0

    async def moved(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal posts_to_the_old_address
        posts_to_the_old_address += scope["method"] == "POST"
        await RedirectResponse("/real", status_code=307)(scope, receive, send)

    async with behaviour_upstream_app(tmp_path, at="/real", before=moved) as (_, client):
        before = posts_to_the_old_address
        first = await client.call_tool("beh__echo", {"text": "one"})
        second = await client.call_tool("beh__echo", {"text": "two"})
    assert first.structured_content == {"echo": "one"}
    assert second.structured_content == {"echo": "two"}
    assert str(second.meta["upstream/meta"]["request_id"]).startswith(ID_PREFIX)  # the gateway's own POST
    assert posts_to_the_old_address - before == 1  # then the calls go to the new address


async def test_a_call_cancelled_after_its_upstream_moved_its_endpoint_is_cancelled_at_the_new_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.responses import RedirectResponse

    from tests.servers import behaviour

    monkeypatch.setattr(behaviour, "MARKERS", tmp_path)
    posts_to_the_old_address = 0

    async def moved(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal posts_to_the_old_address
        posts_to_the_old_address += scope["method"] == "POST"
        await RedirectResponse("/real", status_code=307)(scope, receive, send)

    async with behaviour_upstream_app(tmp_path, at="/real", before=moved, call_timeout_s="0.5") as (
        _,
        client,
    ):
        before = posts_to_the_old_address
        with anyio.fail_after(10):
            result = await client.call_tool("beh__hang", {"tag": "moved"})
        assert result.is_error and "did not answer within 0.5s" in result.content[0].text
        with anyio.fail_after(10):
            while not (tmp_path / "cancelled-moved").exists():  # notifications/cancelled reached /real
                await client.call_tool("beh__echo", {"text": "ping"})
    assert posts_to_the_old_address - before == 1  # only the call itself, before it learnt the move


async def test_every_call_posts_the_sessions_id_negotiated_protocol_version_and_configured_headers(
    tmp_path: Path,
) -> None:
    call_headers: list[dict[bytes, bytes]] = []
    listing_headers: list[dict[bytes, bytes]] = []  # the SDK's own requests, after initialize

    async def record_calls(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        body = await receive()
        if b'"tools/call"' in body.get("body", b""):
            call_headers.append(dict(scope["headers"]))
        elif b'"tools/list"' in body.get("body", b""):
            listing_headers.append(dict(scope["headers"]))
        replayed = [body]

        async def replay() -> Any:
            return replayed.pop() if replayed else await receive()

        await app(scope, replay, send)

    configured = '{authorization: "Bearer s3cret", x-tenant: acme}'
    async with behaviour_upstream_app(tmp_path, before=record_calls, headers=configured) as (_, client):
        first = await client.call_tool("beh__echo", {"text": "one"})
        second = await client.call_tool("beh__echo", {"text": "two"})
    assert first.structured_content == {"echo": "one"} and second.structured_content == {"echo": "two"}
    assert len(call_headers) == 2 and listing_headers
    for headers in call_headers:  # what the SDK's transport sends on the same session
        assert headers[b"mcp-protocol-version"] == listing_headers[0][b"mcp-protocol-version"]
        assert headers[b"mcp-session-id"] == listing_headers[0][b"mcp-session-id"]
        assert headers[b"accept"] == b"application/json, text/event-stream"
        assert headers[b"content-type"] == b"application/json"
        assert headers[b"authorization"] == b"Bearer s3cret" and headers[b"x-tenant"] == b"acme"
    assert listing_headers[0][b"authorization"] == b"Bearer s3cret"
    assert call_headers[0].keys() == call_headers[1].keys()


async def test_an_https_upstream_whose_ca_is_in_ssl_cert_file_serves_listings_and_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server_pem = tmp_path / "server.pem"
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    async with behaviour_upstream_app(tmp_path, tls_pem=server_pem) as (gateway, client):
        listed = await client.list_tools()  # initialize and the listing: the SDK's client
        result = await client.call_tool("beh__echo", {"text": "over tls"})  # the gateway's own POST
        url = gateway.upstreams["beh"].config.url
    assert url.startswith("https://127.0.0.1:")
    assert "beh__echo" in {tool.name for tool in listed.tools}
    assert result.structured_content == {"echo": "over tls"} and not result.is_error


async def test_an_upstream_reached_through_the_proxy_the_environment_names_serves_listings_and_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxied: list[tuple[str, bytes]] = []  # (method, Host) of every request the "proxy" received

    async def as_proxy(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        proxied.append((scope["method"], dict(scope["headers"])[b"host"]))
        await app(scope, receive, send)

    async with behaviour_listening(before=as_proxy) as listening:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", listening)  # the server plays the proxy: it answers for any host
        upstreams = write_upstreams(
            tmp_path, "upstreams:\n  beh:\n    type: streamable-http\n    url: http://upstream.invalid/mcp\n"
        )
        async with gateway_client(upstreams) as (gateway, client):
            await wait_for_status(gateway, "beh", Status.READY, timeout_s=30)
            result = await client.call_tool("beh__echo", {"text": "via proxy"})
    assert result.structured_content == {"echo": "via proxy"} and not result.is_error
    assert ("POST", b"upstream.invalid") in proxied and {host for _, host in proxied} == {b"upstream.invalid"}


@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirect_that_is_not_followed_fails_the_call_saying_where_it_pointed(
    tmp_path: Path, status: int
) -> None:
    from starlette.responses import RedirectResponse

    target = "/real" if status == 302 else "http://elsewhere.example/mcp"

    async def moved(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        body = await receive()
        if b'"tools/call"' in body.get("body", b""):
            await RedirectResponse(target, status_code=status)(scope, receive, send)
            return
        replayed = [body]

        async def replay() -> Any:
            return replayed.pop() if replayed else await receive()

        await app(scope, replay, send)

    async with behaviour_upstream_app(tmp_path, before=moved) as (_, client):
        result = await client.call_tool("beh__echo", {"text": "one"})
    assert result.is_error
    assert f"redirected the call (HTTP {status}) to {target}" in result.content[0].text


@asynccontextmanager
async def running(command: list[str], env: dict[str, str]) -> AsyncIterator[Process]:
    """A process, stopped on the way out if it is still running."""
    async with await anyio.open_process(command, env=env) as process:
        try:
            yield process
        finally:
            with suppress(ProcessLookupError):
                process.terminate()


class _Endpoint:
    """An ASGI endpoint for a Starlette ``Route`` (a plain function would be taken for a request handler)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@asynccontextmanager
async def behaviour_listening(
    *, at: str = "/mcp", before: Any = None, resume: Any = None, tls_pem: Path | None = None
) -> AsyncIterator[str]:
    """The behaviour server in process (resumable: it keeps its SSE events, retry 10 ms), on
    uvicorn (over TLS with ``tls_pem``), behind ``/mcp``: ``before(server, scope, receive,
    send)`` stands in front of it if given, ``resume`` answers the GETs that resume a
    stream. Yields its base URL."""
    from starlette.routing import Route

    from tests.servers import behaviour

    manager = StreamableHTTPSessionManager(
        app=behaviour.server, event_store=behaviour.MemoryEventStore(), retry_interval=10
    )
    server = StreamableHTTPASGIApp(manager)

    async def front(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        if resume is not None and scope["method"] == "GET" and b"last-event-id" in headers:
            await resume(scope, receive, send)
        elif before is not None:
            await before(server, scope, receive, send)
        else:
            await server(scope, receive, send)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    routes: list[BaseRoute] = [Route("/mcp", _Endpoint(front), methods=["GET", "POST", "DELETE"])]
    if at != "/mcp":
        routes.append(Route(at, server))
    async with serve_http(Starlette(routes=routes, lifespan=lifespan), tls_pem) as url:
        yield url


@asynccontextmanager
async def behaviour_upstream_app(
    tmp_path: Path,
    *,
    at: str = "/mcp",
    before: Any = None,
    resume: Any = None,
    tls_pem: Path | None = None,
    **extra: str,
) -> AsyncIterator[tuple[Gateway, ClientSession]]:
    """:func:`behaviour_listening`, a gateway with it as ``beh`` (``extra``: more keys of
    its entry), and a client of the gateway."""
    async with behaviour_listening(at=at, before=before, resume=resume, tls_pem=tls_pem) as url:
        upstreams = write_upstreams(
            tmp_path,
            f"upstreams:\n  beh:\n    type: streamable-http\n    url: {url}/mcp\n{upstream_keys(extra)}",
        )
        async with gateway_client(upstreams) as (gateway, client):
            await wait_for_status(gateway, "beh", Status.READY, timeout_s=30)
            yield gateway, client


async def test_an_answer_whose_encoding_lies_fails_the_call_as_the_upstreams_error_and_is_audited(
    tmp_path: Path,
) -> None:
    async def garbled_tool_calls(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if b'"tools/call"' not in body:
            replayed = [{"type": "http.request", "body": body, "more_body": False}]

            async def replay() -> Any:
                return replayed.pop() if replayed else await receive()

            await app(scope, replay, send)
            return
        headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"\x00 this is not gzip" * 10})

    async with behaviour_upstream_app(tmp_path, before=garbled_tool_calls) as (gateway, client):
        with anyio.fail_after(10):
            result = await client.call_tool("beh__echo", {"text": "hi"})
        assert gateway.services is not None
        audit = gateway.services.audit.config.path
    assert result.is_error
    assert result.content[0].text.startswith("mcp-guard: upstream 'beh' failed: ")
    assert "its answer could not be read: ContentEncodingError: Can not decode content-encoding: gzip" in (
        result.content[0].text
    )
    with closing(sqlite3.connect(audit)) as db:  # the gateway has closed: its outcomes are written
        kinds = [
            r[0] for r in db.execute("SELECT kind FROM entries WHERE kind != 'policy_reload' ORDER BY seq")
        ]
    assert kinds[-2:] == ["decision", "outcome"]
