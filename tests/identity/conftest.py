"""Fixtures for the identity tests: real key pairs and a real signer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcp_guard.identity import AuthConfig, TokenVerifier
from tests.identity.identity_support import SECRET, KeyPair, Sign, claims, make_config


@pytest.fixture(scope="session")
def key_pairs() -> dict[str, KeyPair]:
    return {
        "EdDSA": KeyPair("EdDSA", ed25519.Ed25519PrivateKey.generate()),
        "ES256": KeyPair("ES256", ec.generate_private_key(ec.SECP256R1())),
        "RS256": KeyPair("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }


@pytest.fixture
def sign(key_pairs: dict[str, KeyPair]) -> Sign:
    """sign(alg="HS256", kid=None, headers=None, **claim_overrides) -> a really signed JWT."""

    def _sign(
        alg: str = "HS256", kid: str | None = None, headers: dict[str, Any] | None = None, **over: Any
    ) -> str:
        key: Any = SECRET if alg == "HS256" else key_pairs[alg].private
        extra = dict(headers or {})
        if kid is not None:
            extra["kid"] = kid
        return jwt.encode(claims(**over), key, algorithm=alg, headers=extra or None)

    return _sign


@pytest.fixture
def hs_config() -> AuthConfig:
    return make_config([{"secret": SECRET, "algorithms": ["HS256"]}])


@pytest.fixture
def hs_verifier(hs_config: AuthConfig) -> TokenVerifier:
    return TokenVerifier(hs_config)


@pytest.fixture
def pem_files(tmp_path: Path, key_pairs: dict[str, KeyPair]) -> dict[str, Path]:
    paths = {}
    for alg, pair in key_pairs.items():
        path = tmp_path / f"{alg}.pub.pem"
        path.write_bytes(pair.public_pem)
        paths[alg] = path
    return paths
