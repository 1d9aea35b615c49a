"""stdio identity: the token comes from the environment and is verified like an HTTP one."""

from __future__ import annotations

import pytest

from mcp_guard.identity import AuthConfig, AuthError, principal_from_environment
from mcp_guard.principal import Principal
from tests.identity.identity_support import SECRET, Sign, make_config

pytestmark = pytest.mark.anyio


async def test_the_token_in_mcp_guard_token_becomes_the_principal(hs_config: AuthConfig, sign: Sign) -> None:
    principal = await principal_from_environment(hs_config, environ={"MCP_GUARD_TOKEN": sign(sub="carol")})
    assert principal.user == "carol" and principal.agent == "claude-desktop"


async def test_the_token_variable_name_is_configurable(sign: Sign) -> None:
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}], token_env="ACME_TOKEN")
    assert (await principal_from_environment(config, environ={"ACME_TOKEN": sign()})).user == "alice"


async def test_without_a_token_or_local_principal_the_user_is_told_what_to_do(hs_config: AuthConfig) -> None:
    with pytest.raises(AuthError) as caught:
        await principal_from_environment(hs_config, environ={})
    message = caught.value.description
    assert "set MCP_GUARD_TOKEN" in message
    assert "mcp-guard token issue" in message
    assert "stdio_local_principal" in message


async def test_an_invalid_token_is_refused_with_its_reason(hs_config: AuthConfig, sign: Sign) -> None:
    with pytest.raises(AuthError, match=r"MCP_GUARD_TOKEN does not hold a valid token: token has expired"):
        await principal_from_environment(hs_config, environ={"MCP_GUARD_TOKEN": sign(exp=1, iat=0)})


async def test_a_configured_local_principal_is_used_only_when_no_token_is_set(sign: Sign) -> None:
    local = Principal(user="dev", agent="terminal")
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}], stdio_local_principal=local)
    assert await principal_from_environment(config, environ={}) == local
    assert (await principal_from_environment(config, environ={"MCP_GUARD_TOKEN": sign()})).user == "alice"


async def test_an_invalid_token_never_falls_back_to_the_local_principal(sign: Sign) -> None:
    config = make_config(
        [{"secret": SECRET, "algorithms": ["HS256"]}], stdio_local_principal=Principal(user="dev")
    )
    with pytest.raises(AuthError):
        await principal_from_environment(config, environ={"MCP_GUARD_TOKEN": "garbage"})
