"""RFC 9728 protected-resource metadata, at the root and path-suffixed well-known URLs."""

from __future__ import annotations

import httpx2
import pytest
from starlette.applications import Starlette

from mcp_guard.errors import ConfigError
from mcp_guard.identity import protected_resource_routes
from tests.identity.identity_support import SECRET, make_config

pytestmark = pytest.mark.anyio

KEYS = [{"secret": SECRET, "algorithms": ["HS256"]}]


async def fetch(path: str, **fields: object) -> httpx2.Response:
    app = Starlette(routes=protected_resource_routes(make_config(KEYS, **fields)))
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8765"
    ) as c:
        return await c.get(path)


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
)
async def test_the_metadata_document_names_resource_servers_scopes_and_header_bearer(path: str) -> None:
    response = await fetch(path, required_scopes=["tools:call"])
    assert response.status_code == 200
    assert response.json() == {
        "resource": "http://127.0.0.1:8765/mcp",
        "authorization_servers": ["https://idp.example.test/"],
        "scopes_supported": ["tools:call"],
        "bearer_methods_supported": ["header"],
    }


async def test_configured_authorization_servers_and_scopes_replace_the_defaults() -> None:
    response = await fetch(
        "/.well-known/oauth-protected-resource/mcp",
        authorization_servers=["https://login.example.test/realms/acme"],
        scopes_supported=["tools:list", "tools:call"],
        resource_name="mcp-guard",
    )
    document = response.json()
    assert document["authorization_servers"] == ["https://login.example.test/realms/acme"]
    assert document["scopes_supported"] == ["tools:list", "tools:call"]
    assert document["resource_name"] == "mcp-guard"


def test_a_resource_without_a_path_gets_one_route() -> None:
    config = make_config(KEYS).model_copy(update={"audience": "https://mcp.example.test"})
    assert [route.path for route in protected_resource_routes(config)] == [
        "/.well-known/oauth-protected-resource"
    ]


def test_an_audience_that_is_not_a_url_cannot_publish_metadata() -> None:
    config = make_config(KEYS).model_copy(update={"audience": "api://mcp-guard"})
    with pytest.raises(ConfigError, match=r"auth\.audience"):
        protected_resource_routes(config)
