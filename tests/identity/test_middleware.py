"""BearerAuthMiddleware over real HTTP semantics (httpx2's ASGI transport)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import Receive, Scope, Send

from mcp_guard.identity import BearerAuthMiddleware, TokenVerifier, resource_metadata_url
from mcp_guard.identity.config import AuthConfig
from mcp_guard.principal import Principal
from tests.identity.identity_support import Sign

pytestmark = pytest.mark.anyio

METADATA = "http://127.0.0.1:8765/.well-known/oauth-protected-resource/mcp"


async def echo_identity(scope: Scope, receive: Receive, send: Send) -> None:
    """A downstream app reporting what identity reached it."""
    principal: Principal = scope["state"]["principal"]
    user = scope["user"]
    token = get_access_token()
    assert isinstance(user, AuthenticatedUser) and token is not None
    body = json.dumps(
        {
            "user": principal.user,
            "agent": principal.agent,
            "client_id": user.access_token.client_id,
            "subject": user.access_token.subject,
            "auth_scopes": sorted(scope["auth"].scopes),
            "context_token": token.token,
        }
    ).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def client_for(verifier: TokenVerifier, **options: Any) -> httpx2.AsyncClient:
    app = BearerAuthMiddleware(echo_identity, verifier, resource_metadata_url=METADATA, **options)
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8765")


async def test_a_valid_bearer_token_reaches_the_app_as_principal_and_sdk_user(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    token = sign()
    async with client_for(hs_verifier) as client:
        response = await client.post("/mcp", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    seen = response.json()
    assert seen["user"] == "alice" and seen["agent"] == "claude-desktop"
    assert seen["client_id"] == "alice|claude-desktop|acme" and seen["subject"] == "alice"
    assert seen["auth_scopes"] == ["tools:call", "tools:list"]
    # The SDK's AccessToken carries a fingerprint, never the credential itself.
    assert seen["context_token"].startswith("sha256:") and token not in seen["context_token"]


async def test_the_bearer_scheme_is_case_insensitive(hs_verifier: TokenVerifier, sign: Sign) -> None:
    async with client_for(hs_verifier) as client:
        response = await client.get("/mcp", headers={"Authorization": f"bearer {sign()}"})
    assert response.status_code == 200


async def test_a_request_without_a_token_gets_401_with_no_error_code(hs_verifier: TokenVerifier) -> None:
    async with client_for(hs_verifier) as client:
        response = await client.post("/mcp")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{METADATA}"'
    assert response.json()["error_description"].startswith("authentication required")


async def test_a_non_bearer_scheme_counts_as_no_token(hs_verifier: TokenVerifier) -> None:
    async with client_for(hs_verifier) as client:
        response = await client.post("/mcp", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{METADATA}"'


async def test_an_invalid_token_gets_401_invalid_token_with_its_reason(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    async with client_for(hs_verifier) as client:
        response = await client.post("/mcp", headers={"Authorization": f"Bearer {sign(aud='https://else')}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="token audience (aud) is not this resource", '
        f'resource_metadata="{METADATA}"'
    )
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "token audience (aud) is not this resource",
    }
    assert response.headers["cache-control"] == "no-store"


async def test_a_token_lacking_a_required_scope_gets_403_insufficient_scope(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    async with client_for(hs_verifier, required_scopes=["tools:call", "admin"]) as client:
        response = await client.post("/mcp", headers={"Authorization": f"Bearer {sign()}"})
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="token lacks the required scope(s): admin", '
        f'scope="tools:call admin", resource_metadata="{METADATA}"'
    )


async def test_a_token_with_every_required_scope_passes(hs_verifier: TokenVerifier, sign: Sign) -> None:
    async with client_for(hs_verifier, required_scopes=["tools:call"]) as client:
        response = await client.post("/mcp", headers={"Authorization": f"Bearer {sign()}"})
    assert response.status_code == 200


@pytest.mark.parametrize("param", ["access_token", "Access_Token", "token", "id_token"])
async def test_a_token_in_the_query_string_is_refused(
    hs_verifier: TokenVerifier, sign: Sign, param: str
) -> None:
    token = sign()
    async with client_for(hs_verifier) as client:
        # Refused even alongside a valid header: the URL has already leaked the credential.
        response = await client.post(
            "/mcp", params={param: token}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 400
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_request", ')
    assert "query string are refused" in response.json()["error_description"]


async def test_an_ordinary_query_string_is_fine(hs_verifier: TokenVerifier, sign: Sign) -> None:
    async with client_for(hs_verifier) as client:
        response = await client.post(
            "/messages/", params={"session_id": "abc"}, headers={"Authorization": f"Bearer {sign()}"}
        )
    assert response.status_code == 200


async def test_two_authorization_headers_are_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    headers = [("Authorization", f"Bearer {sign()}"), ("Authorization", f"Bearer {sign(sub='bob')}")]
    async with client_for(hs_verifier) as client:
        response = await client.post("/mcp", headers=headers)
    assert response.status_code == 400


async def test_an_empty_bearer_header_is_an_invalid_token(hs_verifier: TokenVerifier) -> None:
    async with client_for(hs_verifier) as client:
        response = await client.post("/mcp", headers={"Authorization": "Bearer "})
    assert response.status_code == 401


async def test_lifespan_events_pass_through_untouched(hs_verifier: TokenVerifier) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await BearerAuthMiddleware(app, hs_verifier)({"type": "lifespan"}, _never_receive, _never_send)
    assert seen == ["lifespan"]


async def test_the_metadata_url_for_www_authenticate_is_path_suffixed(hs_config: AuthConfig) -> None:
    assert resource_metadata_url(hs_config) == METADATA


async def _never_receive() -> Any:
    raise AssertionError("not expected")


async def _never_send(message: Any) -> None:
    raise AssertionError("not expected")


async def test_a_websocket_is_refused_without_reaching_the_app(hs_verifier: TokenVerifier) -> None:
    sent: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app must not run")

    async def record(message: Any) -> None:
        sent.append(message)

    await BearerAuthMiddleware(app, hs_verifier)({"type": "websocket", "headers": []}, _never_receive, record)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "bearer authentication required"}]
