"""stdio identity: the token comes from the environment, is verified like an HTTP one, and
is refused on every request once it has expired."""

from __future__ import annotations

import time

import pytest

from mcp_guard.identity import AuthConfig, AuthError, StdioIdentity, identity_from_environment
from mcp_guard.principal import Principal
from tests.identity.identity_support import SECRET, Sign, make_config

pytestmark = pytest.mark.anyio

EXPIRED = (
    "MCP_GUARD_TOKEN does not hold a valid token: token has expired; issue a new one with "
    "`mcp-guard token issue` and start mcp-guard again with it"
)


class WallClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_the_token_in_mcp_guard_token_becomes_the_principal(hs_config: AuthConfig, sign: Sign) -> None:
    identity = await identity_from_environment(hs_config, environ={"MCP_GUARD_TOKEN": sign(sub="carol")})
    principal = identity.current()
    assert principal.user == "carol" and principal.agent == "claude-desktop"


async def test_the_token_variable_name_is_configurable(sign: Sign) -> None:
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}], token_env="ACME_TOKEN")
    assert (await identity_from_environment(config, environ={"ACME_TOKEN": sign()})).current().user == "alice"


async def test_without_a_token_or_local_principal_the_user_is_told_what_to_do(hs_config: AuthConfig) -> None:
    with pytest.raises(AuthError) as caught:
        await identity_from_environment(hs_config, environ={})
    message = caught.value.description
    assert "set MCP_GUARD_TOKEN" in message
    assert "mcp-guard token issue" in message
    assert "stdio_local_principal" in message


async def test_an_invalid_token_is_refused_with_its_reason(hs_config: AuthConfig, sign: Sign) -> None:
    with pytest.raises(AuthError, match=r"MCP_GUARD_TOKEN does not hold a valid token: token has expired"):
        await identity_from_environment(hs_config, environ={"MCP_GUARD_TOKEN": sign(exp=1, iat=0)})


async def test_a_configured_local_principal_is_used_only_when_no_token_is_set(sign: Sign) -> None:
    local = Principal(user="dev", agent="terminal")
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}], stdio_local_principal=local)
    assert (await identity_from_environment(config, environ={})).current() == local
    assert (
        await identity_from_environment(config, environ={"MCP_GUARD_TOKEN": sign()})
    ).current().user == "alice"


async def test_an_invalid_token_never_falls_back_to_the_local_principal(sign: Sign) -> None:
    config = make_config(
        [{"secret": SECRET, "algorithms": ["HS256"]}], stdio_local_principal=Principal(user="dev")
    )
    with pytest.raises(AuthError):
        await identity_from_environment(config, environ={"MCP_GUARD_TOKEN": "garbage"})


async def test_the_token_is_refused_once_its_expiry_plus_the_leeway_has_passed(sign: Sign) -> None:
    exp = int(time.time()) + 5
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}], leeway_s=30)
    clock = WallClock(exp - 60)
    identity = await identity_from_environment(
        config, environ={"MCP_GUARD_TOKEN": sign(exp=exp)}, wall_clock=clock
    )
    assert identity.expires_at == exp and identity.leeway_s == 30
    assert identity.current().user == "alice"
    clock.now = exp + 29.9  # expired, but inside the leeway, as over HTTP
    assert identity.current().user == "alice"
    clock.now = exp + 30
    with pytest.raises(AuthError) as caught:
        identity.current()
    assert caught.value.code == "invalid_token"
    assert caught.value.description == EXPIRED


async def test_the_local_principal_has_no_token_and_never_expires() -> None:
    local = Principal(user="dev")
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}], stdio_local_principal=local)
    clock = WallClock(0)
    identity = await identity_from_environment(config, environ={}, wall_clock=clock)
    clock.now = 10**12
    assert identity.expires_at is None and identity.current() == local
    assert StdioIdentity(local).current() == local
