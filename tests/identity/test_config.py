"""AuthConfig refuses dangerous or unusable settings when it is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mcp_guard.errors import ConfigError
from mcp_guard.identity import AuthConfig, TokenVerifier
from tests.identity.identity_support import SECRET, KeyPair, make_config, write_jwks


def refused(keys: list[dict[str, Any]], **fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make_config(keys, **fields)
    return str(caught.value)


def test_algorithm_none_is_never_allowed() -> None:
    assert "algorithm 'none' is never allowed" in refused([{"secret": SECRET, "algorithms": ["none"]}])
    assert "never allowed" in refused([{"secret": SECRET, "algorithms": ["HS256", "None"]}])


def test_a_key_source_mixing_hmac_and_public_key_algorithms_is_refused() -> None:
    message = refused([{"jwks_url": "https://idp.test/jwks", "algorithms": ["HS256", "RS256"]}])
    assert "mix HMAC and public-key algorithms" in message


def test_hmac_algorithms_need_a_secret_and_a_secret_needs_hmac() -> None:
    assert "need a 'secret'" in refused([{"jwks_url": "https://idp.test/jwks", "algorithms": ["HS256"]}])
    assert "can only verify HS256" in refused([{"secret": SECRET, "algorithms": ["RS256"]}])


def test_a_short_hmac_secret_is_refused() -> None:
    message = refused([{"secret": "too-short", "algorithms": ["HS256"]}])
    assert "secret is 9 bytes; HS256 needs at least 32" in message
    assert "too-short" not in message  # the secret itself never appears in an error


def test_a_key_source_needs_exactly_one_kind_of_key() -> None:
    assert "found: none" in refused([{"algorithms": ["ES256"]}])
    both = refused([{"jwks_file": "a.json", "jwks_url": "https://idp.test/j", "algorithms": ["ES256"]}])
    assert "found: jwks_file, jwks_url" in both


def test_a_jwks_url_must_be_https_unless_it_is_loopback() -> None:
    assert "must be https" in refused([{"jwks_url": "http://idp.test/jwks", "algorithms": ["RS256"]}])
    make_config([{"jwks_url": "http://127.0.0.1:9999/jwks", "algorithms": ["RS256"]}])


@pytest.mark.parametrize("leeway", [-1, 301])
def test_leeway_is_bounded(leeway: int) -> None:
    assert "leeway_s" in refused([{"secret": SECRET, "algorithms": ["HS256"]}], leeway_s=leeway)


def test_unknown_settings_are_refused() -> None:
    assert "extra" in refused([{"secret": SECRET, "algorithms": ["HS256"]}], audiance="typo")


def test_a_configured_kid_must_be_well_formed() -> None:
    assert "kid" in refused([{"secret": SECRET, "algorithms": ["HS256"], "kid": "../x"}])


def test_the_secret_never_shows_in_the_config_repr() -> None:
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}])
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_defaults_match_the_documented_contract() -> None:
    config = make_config([{"secret": SECRET, "algorithms": ["HS256"]}])
    assert (config.leeway_s, config.max_token_bytes, config.token_env) == (30, 8192, "MCP_GUARD_TOKEN")
    assert config.claims.agent == ["agent_id", "azp", "client_id"]
    assert config.stdio_local_principal is None


def test_a_public_key_that_cannot_verify_its_algorithms_is_a_config_error(
    pem_files: dict[str, Path],
) -> None:
    config = make_config([{"public_key_file": str(pem_files["EdDSA"]), "algorithms": ["RS256"]}])
    with pytest.raises(ConfigError, match=r"auth.keys\[0\].*cannot verify any of \['RS256'\]"):
        TokenVerifier(config)


def test_a_private_key_file_is_refused_as_a_public_key(tmp_path: Path, key_pairs: dict[str, KeyPair]) -> None:
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / "private.pem"
    path.write_bytes(
        key_pairs["ES256"].private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    config = make_config([{"public_key_file": str(path), "algorithms": ["ES256"]}])
    with pytest.raises(ConfigError, match="holds a private key"):
        TokenVerifier(config)


def test_every_unreadable_key_file_is_reported_at_once(tmp_path: Path) -> None:
    config = make_config(
        [
            {"public_key_file": str(tmp_path / "missing.pem"), "algorithms": ["ES256"]},
            {"jwks_file": str(write_jwks(tmp_path / "empty.json", [])), "algorithms": ["ES256"]},
        ]
    )
    with pytest.raises(ConfigError) as caught:
        TokenVerifier(config)
    assert len(caught.value.problems) == 2
    assert "auth.keys[0]: cannot read public_key_file" in caught.value.problems[0]
    assert "auth.keys[1]: jwks_file" in caught.value.problems[1]


def test_a_local_stdio_principal_is_configured_explicitly() -> None:
    config = AuthConfig.model_validate(
        {
            "issuer": "https://idp.test/",
            "audience": "http://127.0.0.1:8765/mcp",
            "keys": [{"secret": SECRET, "algorithms": ["HS256"]}],
            "stdio_local_principal": {"user": "dev", "agent": "cli", "roles": ["admin"]},
        }
    )
    assert config.stdio_local_principal is not None
    assert config.stdio_local_principal.roles == frozenset({"admin"})
