"""Token verification latency: verify + principal mapping, per algorithm, with a cached key.

Two rows per algorithm:

- ``signature``: every call checks the signature (verified-token cache off): the
  cost of a token seen for the first time;
- ``cache hit``: the same token again (the default bounded verified-token cache).

Run: ``.venv/bin/python benchmarks/token_verify.py [--iterations N]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcp_guard.identity import AuthConfig, TokenVerifier
from mcp_guard.identity.config import KeySource

ISSUER = "https://idp.example.test/"
AUDIENCE = "http://127.0.0.1:8765/mcp"
SECRET = "benchmark-secret-benchmark-secret-0123456789"


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@example.com",
        "agent_id": "claude-desktop",
        "iat": now,
        "exp": now + 3600,
        "roles": ["engineer", "oncall"],
        "groups": ["platform"],
        "tenant": "acme",
        "scope": "tools:list tools:call",
    }


def _setups(tmp: str) -> list[tuple[str, KeySource, str]]:
    private_keys: dict[str, Any] = {
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }
    setups = [
        (
            "HS256",
            KeySource.model_validate({"secret": SECRET, "algorithms": ["HS256"]}),
            jwt.encode(_claims(), SECRET, "HS256"),
        )
    ]
    for alg, private in private_keys.items():
        path = f"{tmp}/{alg}.pem"
        with open(path, "wb") as handle:
            handle.write(
                private.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        source = KeySource.model_validate({"public_key_file": path, "algorithms": [alg]})
        setups.append((alg, source, jwt.encode(_claims(), private, alg)))
    return setups


async def _measure(verifier: TokenVerifier, token: str, iterations: int) -> list[float]:
    for _ in range(200):  # warm up
        await verifier.verify(token)
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        start = clock()
        await verifier.verify(token)
        samples.append((clock() - start) / 1000)
    return samples


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(iterations: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        setups = _setups(tmp)
        print(f"verify + principal mapping, {iterations} iterations, microseconds")
        print(f"{'alg':<7}{'mode':<11}{'p50':>9}{'p99':>9}{'mean':>9}")
        for alg, source, token in setups:
            for mode, cache_size in (("signature", 0), ("cache hit", 4096)):
                config = AuthConfig(
                    issuer=ISSUER, audience=AUDIENCE, keys=[source], verified_cache_size=cache_size
                )
                samples = await _measure(TokenVerifier(config), token, iterations)
                print(
                    f"{alg:<7}{mode:<11}{_percentile(samples, 0.50):>9.1f}"
                    f"{_percentile(samples, 0.99):>9.1f}{statistics.fmean(samples):>9.1f}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    asyncio.run(main(parser.parse_args().iterations))
