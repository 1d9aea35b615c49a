"""Every caller is known and sees only its tools: JWTs over HTTP, SSE and stdio, end to end."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import anyio
import httpx2
import jwt
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.session import IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_guard.assemble import http_app
from mcp_guard.config.settings import AccessSettings, GatewaySettings, load_settings
from mcp_guard.gateway import Gateway
from mcp_guard.pipeline.access import AllowlistPolicy, Grant
from mcp_guard.principal import Principal
from tests.harness import (
    FAST_BACKOFF,
    INITIALIZE_REQUEST,
    MCP_POST_HEADERS,
    behaviour_upstream,
    demo_upstreams_yaml,
    gateway_client,
    serve_http,
    with_private_state,
    write_upstreams,
)

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-tests-only-0123456789abcdef"
ISSUER = "https://idp.example"
AUDIENCE = "http://127.0.0.1:8765/mcp"
DEMO = demo_upstreams_yaml("bank", "mail")
SETTINGS = f"""
auth:
  issuer: {ISSUER}
  audience: {AUDIENCE}
  keys:
    - secret: "${{TEST_JWT_SECRET}}"
      algorithms: [HS256]
access:
  allow_all: false
  grants:
    - roles: [finance]
      tools: ["bank__*"]
    - roles: [support]
      tools: ["mail__*"]
"""


def token(sub: str, roles: list[str], **extra: object) -> str:
    now = int(time.time())
    claims = {
        "sub": sub,
        "roles": roles,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        **extra,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def bearer(jwt_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt_token}"}


def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "mcp-guard.yaml"
    path.write_text(SETTINGS, encoding="utf-8")
    return path


@asynccontextmanager
async def authenticated_gateway(tmp_path: Path) -> AsyncIterator[str]:
    settings = load_settings(settings_file(tmp_path), {"TEST_JWT_SECRET": SECRET})
    gateway = Gateway(write_upstreams(tmp_path, DEMO), with_private_state(settings), backoff=FAST_BACKOFF)
    async with serve_http(http_app(gateway)) as url:
        yield url


async def tool_names(client: ClientSession) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


async def test_two_principals_at_once_over_http_and_sse_each_see_and_call_only_their_tools(
    tmp_path: Path,
) -> None:
    async with authenticated_gateway(tmp_path) as url:
        finance = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token('fiona', ['finance'])}"})
        support_headers = {"Authorization": f"Bearer {token('sam', ['support'])}"}
        async with (
            finance,
            streamable_http_client(f"{url}/mcp", http_client=finance) as (r1, w1),
            ClientSession(r1, w1) as fiona,
            sse_client(f"{url}/sse", headers=support_headers) as (r2, w2),
            ClientSession(r2, w2) as sam,
        ):
            await fiona.initialize()
            await sam.initialize()
            assert await tool_names(fiona) == {"bank__get_balance", "bank__refund", "bank__transfer"}
            assert await tool_names(sam) == {"mail__send_email", "mail__list_inbox"}
            balance = await fiona.call_tool("bank__get_balance", {"account": "ACC-1001"})
            inbox = await sam.call_tool("mail__list_inbox", {"limit": 1})
            assert isinstance(balance, types.CallToolResult) and not balance.is_error
            assert isinstance(inbox, types.CallToolResult) and not inbox.is_error
            with pytest.raises(MCPError) as hidden:
                await sam.call_tool("bank__refund", {"payment_id": "p", "amount": 1})
            with pytest.raises(MCPError) as missing:
                await sam.call_tool("bank__nonexistent", {"payment_id": "p", "amount": 1})
    assert hidden.value.error.code == missing.value.error.code
    assert str(hidden.value).replace("bank__refund", "X") == str(missing.value).replace(
        "bank__nonexistent", "X"
    )


async def test_health_names_nothing_to_strangers_and_each_principal_only_its_own_upstreams(
    tmp_path: Path,
) -> None:
    async with authenticated_gateway(tmp_path) as url, httpx2.AsyncClient(base_url=url) as http:
        public = await http.get("/healthz")
        stranger = await http.get("/admin/health")
        fiona = await http.get(
            "/admin/health", headers={"Authorization": f"Bearer {token('fiona', ['finance'])}"}
        )
        sam = await http.get(
            "/admin/health", headers={"Authorization": f"Bearer {token('sam', ['support'])}"}
        )
    assert public.status_code == 200
    assert public.json() == {"status": "ok", "upstreams": {"ready": 2, "total": 2}}
    assert stranger.status_code == 401
    assert fiona.status_code == 200 and list(fiona.json()["upstreams"]) == ["bank"]
    assert fiona.json()["upstreams"]["bank"]["status"] == "ready"
    assert list(sam.json()["upstreams"]) == ["mail"]


async def test_requests_without_a_valid_token_get_401_with_resource_metadata(tmp_path: Path) -> None:
    async with authenticated_gateway(tmp_path) as url, httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        missing = await http.post(f"{url}/mcp", json=body)
        forged = await http.post(
            f"{url}/mcp",
            json=body,
            headers={
                "Authorization": "Bearer "
                + jwt.encode(
                    {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
                    "wrong" * 10,
                    algorithm="HS256",
                )
            },
        )
        in_query = await http.post(f"{url}/mcp?access_token={token('fiona', ['finance'])}", json=body)
        metadata = await http.get(f"{url}/.well-known/oauth-protected-resource/mcp")
    assert missing.status_code == 401
    assert "resource_metadata=" in missing.headers["www-authenticate"]
    assert forged.status_code == 401 and 'error="invalid_token"' in forged.headers["www-authenticate"]
    assert in_query.status_code in (400, 401)
    assert metadata.status_code == 200 and metadata.json()["resource"] == AUDIENCE


async def test_over_stdio_the_identity_comes_from_the_environment_token(tmp_path: Path) -> None:
    write_upstreams(tmp_path, DEMO)
    env = {**os.environ, "TEST_JWT_SECRET": SECRET, "MCP_GUARD_TOKEN": token("sam", ["support"])}
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "mcp_guard",
            "serve",
            "--upstreams",
            str(tmp_path / "upstreams.yaml"),
            "--config",
            str(settings_file(tmp_path)),
        ],
        env=env,
        cwd=str(tmp_path),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        assert await tool_names(client) == {"mail__send_email", "mail__list_inbox"}


def test_stdio_without_a_token_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    write_upstreams(tmp_path, DEMO)
    env = {k: v for k, v in os.environ.items() if k != "MCP_GUARD_TOKEN"} | {"TEST_JWT_SECRET": SECRET}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_guard",
            "serve",
            "--upstreams",
            str(tmp_path / "upstreams.yaml"),
            "--config",
            str(settings_file(tmp_path)),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert "MCP_GUARD_TOKEN" in out.stderr and out.stdout == ""


def test_http_without_auth_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    settings = GatewaySettings.model_validate(
        {"local_principal": {"user": "me"}, "server": {"host": "0.0.0.0"}}
    )
    gateway = Gateway(write_upstreams(tmp_path, DEMO), settings)
    with pytest.raises(Exception, match="not a loopback address"):
        http_app(gateway)


async def test_a_client_is_told_when_what_its_principal_may_see_changes(tmp_path: Path) -> None:
    notified = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            notified.set()

    sam = Principal(user="sam", roles=frozenset({"support"}))
    settings = GatewaySettings(
        access=AccessSettings(allow_all=False, grants=[Grant(roles=["support"], tools=["mail__*"])])
    )
    async with gateway_client(
        write_upstreams(tmp_path, DEMO), settings, principal=sam, message_handler=on_message
    ) as (gateway, client):
        assert await tool_names(client) == {"mail__send_email", "mail__list_inbox"}
        await gateway.set_policy(
            AllowlistPolicy(
                [Grant(roles=["finance"], tools=["bank__*"]), Grant(roles=["support"], tools=["mail__*"])]
            )
        )
        assert await tool_names(client) == {"mail__send_email", "mail__list_inbox"}  # a round trip first
        assert not notified.is_set()  # sam's view did not change: nothing to tell
        await gateway.set_policy(AllowlistPolicy([Grant(roles=["support"], tools=["mail__list_inbox"])]))
        with anyio.fail_after(5):
            await notified.wait()
        assert await tool_names(client) == {"mail__list_inbox"}


async def test_a_session_created_by_one_principal_cannot_be_used_with_another_principals_token(
    tmp_path: Path,
) -> None:
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    async with authenticated_gateway(tmp_path) as url, httpx2.AsyncClient() as http:
        fiona = {**MCP_POST_HEADERS, "Authorization": f"Bearer {token('fiona', ['finance'])}"}
        created = await http.post(f"{url}/mcp", json=INITIALIZE_REQUEST, headers=fiona)
        session = created.headers["mcp-session-id"]
        await http.post(
            f"{url}/mcp",
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={**fiona, "mcp-session-id": session},
        )
        sam = {
            **MCP_POST_HEADERS,
            "Authorization": f"Bearer {token('sam', ['support'])}",
            "mcp-session-id": session,
        }
        hijack = await http.post(f"{url}/mcp", json=listing, headers=sam)
        own = await http.post(f"{url}/mcp", json=listing, headers={**fiona, "mcp-session-id": session})
    assert created.status_code == 200
    assert hijack.status_code == 404
    assert own.status_code == 200 and "bank__refund" in own.text


@pytest.mark.parametrize("who", ["sam", "vera"])
async def test_resources_and_prompts_of_an_upstream_are_seen_only_by_whom_its_tools_are_and_reads_are_audited(
    tmp_path: Path, who: str
) -> None:
    principal = Principal(user=who, roles=frozenset({"support" if who == "sam" else "security"}))
    settings = GatewaySettings(
        state_dir=tmp_path / "state",
        access=AccessSettings(
            allow_all=False,
            grants=[
                Grant(roles=["support"], tools=["mail__*"]),
                Grant(roles=["security"], tools=["vault__*"]),
            ],
        ),
    )
    async with gateway_client(behaviour_upstream(tmp_path, "vault"), settings, principal=principal) as (
        _,
        client,
    ):
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        answers = []
        for read in (
            lambda: client.read_resource("memo://readme"),
            lambda: client.read_resource("memo://nothing-here"),
            lambda: client.get_prompt("vault__greet", {"who": "x"}),
            lambda: client.get_prompt("vault__nothing_here", {"who": "x"}),
        ):
            try:
                answers.append(await read())
            except MCPError as exc:
                answers.append(
                    str(exc).replace("memo://nothing-here", "memo://readme").replace("nothing_here", "greet")
                )
    (audit,) = (tmp_path / "state").rglob("audit.db")
    with closing(sqlite3.connect(audit)) as db:
        reads = [json.loads(r[0]) for r in db.execute("SELECT record FROM entries WHERE kind = 'read'")]
    if who == "sam":  # hidden reads answer exactly as reads of nothing
        assert resources == prompts == []
        assert answers[0] == answers[1] and answers[2] == answers[3]
        assert [r["decision"] for r in reads] == ["BLOCK"] * 4
    else:
        assert (resources, prompts) == (["memo://readme"], ["vault__greet"])
        assert isinstance(answers[0], types.ReadResourceResult) and isinstance(
            answers[2], types.GetPromptResult
        )
        assert [r["decision"] for r in reads] == ["ALLOW", "BLOCK", "ALLOW", "BLOCK"]
    assert [(r["method"], r["principal"]["user"]) for r in reads] == [
        ("resources/read", who),
        ("resources/read", who),
        ("prompts/get", who),
        ("prompts/get", who),
    ]
