"""Verification keys: loading secrets, PEM files and JWKS documents into one shape.

Every key knows the algorithms it may verify: the key source's allowlist narrowed to
what the key's type can do (and to a JWK's own ``alg``, when it names one). A key can
therefore never be used with an algorithm of another family, which is what rules out
key-confusion attacks even before PyJWT's own checks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mcp_guard.errors import ConfigError
from mcp_guard.identity.config import (
    KID_PATTERN,
    OKP_ALGORITHMS,
    RSA_ALGORITHMS,
    KeySource,
)

logger = logging.getLogger(__name__)

MIN_RSA_BITS = 2048

VerifyingKey = (
    bytes | rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

_EC_CURVE_ALGORITHM: dict[str, str] = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One key ready for ``jwt.decode``: the key object, its id and the algorithms it may verify."""

    key: VerifyingKey
    algorithms: frozenset[str]
    kid: str | None
    origin: str
    """Where the key came from, for logs (``secret #1``, a file name or a URL); never key material."""

    def __repr__(self) -> str:
        algorithms = sorted(self.algorithms)
        return f"VerificationKey(kid={self.kid!r}, algorithms={algorithms}, origin={self.origin!r})"


def compatible_algorithms(key: object) -> frozenset[str]:
    """The JWS algorithms a public key of this type and size can verify (empty if none)."""
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS if key.key_size >= MIN_RSA_BITS else frozenset()
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_CURVE_ALGORITHM.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return OKP_ALGORITHMS
    return frozenset()


def _as_verifying_key(key: PublicKeyTypes) -> VerifyingKey | None:
    if isinstance(
        key,
        rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey,
    ):
        return key
    return None


def load_public_key_pem(data: bytes, origin: str) -> VerifyingKey:
    """Parse a PEM public key or certificate.

    Raises:
        ConfigError: the data is not a PEM public key or certificate, or is a private key.
    """
    if b"PRIVATE KEY" in data:
        raise ConfigError([f"{origin}: holds a private key; configure the public key (public.pem) instead"])
    try:
        if b"BEGIN CERTIFICATE" in data:
            public: PublicKeyTypes = x509.load_pem_x509_certificate(data).public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError([f"{origin}: not a PEM public key or certificate"]) from None
    key = _as_verifying_key(public)
    if key is None:
        raise ConfigError([f"{origin}: unsupported public key type {type(public).__name__}"])
    return key


def _static_secret(source: KeySource, origin: str) -> VerificationKey:
    assert source.secret is not None
    secret = source.secret.get_secret_value().encode()
    return VerificationKey(secret, frozenset(source.algorithms), source.kid, origin)


def _static_public_key(source: KeySource, origin: str) -> VerificationKey:
    assert source.public_key_file is not None
    path = Path(source.public_key_file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{origin}: cannot read public_key_file {str(path)!r}: {exc.strerror}"]) from None
    key = load_public_key_pem(data, f"{origin} ({path})")
    usable = frozenset(source.algorithms) & compatible_algorithms(key)
    if not usable:
        raise ConfigError(
            [
                f"{origin}: the key in {str(path)!r} ({type(key).__name__}) cannot verify any of "
                f"{sorted(source.algorithms)}"
            ]
        )
    return VerificationKey(key, usable, source.kid, f"{origin} ({path.name})")


def keys_from_jwks(
    document: Any, allowed: frozenset[str], origin: str
) -> tuple[list[VerificationKey], list[str]]:
    """Turn a parsed JWKS document into keys, skipping (and reporting) unusable entries.

    Returns the usable keys and one problem string per skipped entry. A key is
    skipped when it is not for signatures, has a malformed ``kid``, cannot be
    parsed, or can verify none of ``allowed`` (symmetric ``oct`` keys never can).

    Raises:
        ValueError: the document is not an object with a ``keys`` list.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (an object with a 'keys' list)")
    keys: list[VerificationKey] = []
    problems: list[str] = []
    for index, entry in enumerate(document["keys"]):
        where = f"{origin} keys[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        kid = entry.get("kid")
        if kid is not None and not (isinstance(kid, str) and KID_PATTERN.fullmatch(kid)):
            problems.append(f"{where}: kid must match [A-Za-z0-9._-]{{1,128}}")
            continue
        if entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") == "oct":
            problems.append(f"{where}: symmetric (oct) keys are not accepted from a JWKS")
            continue
        try:
            parsed = jwt.PyJWK(entry).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            problems.append(f"{where}: cannot be parsed as a public JWK")
            continue
        key = _as_verifying_key(parsed)
        usable = allowed & compatible_algorithms(key) if key is not None else frozenset()
        if isinstance(entry.get("alg"), str):
            usable &= {entry["alg"]}
        if key is None or not usable:
            problems.append(f"{where}: verifies none of the allowed algorithms {sorted(allowed)}")
            continue
        keys.append(VerificationKey(key, usable, kid, origin))
    return keys, problems


def _static_jwks_file(source: KeySource, origin: str) -> list[VerificationKey]:
    assert source.jwks_file is not None
    path = Path(source.jwks_file)
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError([f"{origin}: cannot read jwks_file {str(path)!r}: {exc.strerror}"]) from None
    except ValueError:
        raise ConfigError([f"{origin}: jwks_file {str(path)!r} is not valid JSON"]) from None
    try:
        keys, problems = keys_from_jwks(document, frozenset(source.algorithms), f"{origin} ({path.name})")
    except ValueError as exc:
        raise ConfigError([f"{origin}: jwks_file {str(path)!r}: {exc}"]) from None
    for problem in problems:
        logger.warning("skipping JWKS entry: %s", problem)
    if not keys:
        raise ConfigError([f"{origin}: jwks_file {str(path)!r} holds no usable signing key"])
    return keys


def load_static_keys(sources: list[KeySource]) -> list[VerificationKey]:
    """Load every key that does not need the network (secrets, PEM files, JWKS files).

    Raises:
        ConfigError: naming every source that cannot be read or used (all at once).
    """
    keys: list[VerificationKey] = []
    problems: list[str] = []
    for index, source in enumerate(sources):
        origin = f"auth.keys[{index}]"
        try:
            if source.secret is not None:
                keys.append(_static_secret(source, origin))
            elif source.public_key_file is not None:
                keys.append(_static_public_key(source, origin))
            elif source.jwks_file is not None:
                keys.extend(_static_jwks_file(source, origin))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return keys
