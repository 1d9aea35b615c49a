"""Keys, claim sets and configurations shared by the identity tests (fixtures live in conftest)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from mcp_guard.identity import AuthConfig

ISSUER = "https://idp.example.test/"
AUDIENCE = "http://127.0.0.1:8765/mcp"
SECRET = "a-test-secret-that-is-long-enough-for-hs256"

Sign = Callable[..., str]
"""sign(alg="HS256", kid=None, headers=None, **claim_overrides) -> a really signed JWT."""

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeyPair:
    alg: str
    private: PrivateKey

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, kid: str) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": kid, "alg": self.alg, "use": "sig"}


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid claim set for ISSUER/AUDIENCE; ``name=None`` removes a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "agent_id": "claude-desktop",
        "iat": now,
        "exp": now + 300,
        "roles": ["engineer"],
        "groups": ["platform"],
        "tenant": "acme",
        "scope": "tools:call tools:list",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def make_config(keys: list[dict[str, Any]], **fields: Any) -> AuthConfig:
    return AuthConfig.model_validate({"issuer": ISSUER, "audience": AUDIENCE, "keys": keys, **fields})


def write_jwks(path: Path, jwks: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"keys": jwks}))
    return path
