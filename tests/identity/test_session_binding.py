"""A streamable-HTTP session belongs to the principal that opened it (real SDK session manager)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from mcp_guard.identity import BearerAuthMiddleware, TokenVerifier
from mcp_guard.principal import Principal
from tests.identity.identity_support import Sign

pytestmark = pytest.mark.anyio

PROTOCOL = "2025-11-25"


@asynccontextmanager
async def gateway(verifier: TokenVerifier, seen: list[Principal]) -> AsyncIterator[httpx2.AsyncClient]:
    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        assert ctx.request is not None
        seen.append(ctx.request.state.principal)  # how handlers read the verified identity
        return types.ListToolsResult(tools=[])

    manager = StreamableHTTPSessionManager(Server("bound", on_list_tools=list_tools), json_response=True)
    app = BearerAuthMiddleware(manager.handle_request, verifier)
    transport = httpx2.ASGITransport(app=app)
    with anyio.fail_after(10):
        async with (
            manager.run(),
            httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client,
        ):
            yield client


def headers(token: str, session_id: str | None = None) -> dict[str, str]:
    result = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    if session_id is not None:
        result["mcp-session-id"] = session_id
        result["mcp-protocol-version"] = PROTOCOL
    return result


async def open_session(client: httpx2.AsyncClient, token: str) -> str:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    response = await client.post("/mcp", json=initialize, headers=headers(token))
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = await client.post("/mcp", json=initialized, headers=headers(token, session_id))
    assert response.status_code == 202, response.text
    return session_id


async def list_tools(client: httpx2.AsyncClient, token: str, session_id: str) -> httpx2.Response:
    request = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    return await client.post("/mcp", json=request, headers=headers(token, session_id))


async def test_a_session_opened_by_one_principal_refuses_another_principals_token(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    alice, bob = sign(sub="alice"), sign(sub="bob")
    seen: list[Principal] = []
    async with gateway(hs_verifier, seen) as client:
        session_id = await open_session(client, alice)

        stolen = await list_tools(client, bob, session_id)
        assert stolen.status_code == 404  # answered exactly as if the session did not exist

        owned = await list_tools(client, alice, session_id)
        assert owned.status_code == 200, owned.text
        assert owned.json()["result"] == {"tools": []}
    assert [principal.user for principal in seen] == ["alice"]


async def test_the_same_user_through_another_agent_is_another_principal(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    desktop, ide = sign(agent_id="claude-desktop"), sign(agent_id="vscode")
    async with gateway(hs_verifier, []) as client:
        session_id = await open_session(client, desktop)
        assert (await list_tools(client, ide, session_id)).status_code == 404
        assert (await list_tools(client, desktop, session_id)).status_code == 200


async def test_a_fresh_token_for_the_same_principal_keeps_the_session(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    first, refreshed = sign(jti="first"), sign(jti="refreshed")
    assert first != refreshed
    async with gateway(hs_verifier, []) as client:
        session_id = await open_session(client, first)
        assert (await list_tools(client, refreshed, session_id)).status_code == 200
