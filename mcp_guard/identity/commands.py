"""``mcp-guard token``: make a local signing key and issue tokens with it.

``token keygen`` writes a private key (mode 0600), its public key as PEM and a JWKS
holding it; ``token issue`` signs a JWT for a user and agent with that private key
(or with an HMAC secret read from an environment variable). Together they give a
working local setup in minutes without an identity provider.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

KEYGEN_ALGORITHMS = ("EdDSA", "ES256", "RS256")
SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_TTL = re.compile(r"^(\d+)([smhd]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_S = 366 * 86400


class CommandError(Exception):
    """A user mistake in a ``token`` command; the message is printed as is."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``token keygen`` and ``token issue`` to the main CLI's subcommands.

    Each leaf parser sets ``func`` to a ``(args) -> int`` callable.
    """
    token = subparsers.add_parser("token", help="create signing keys and issue JWTs for local use")
    token.set_defaults(func=lambda _args: _usage(token))
    actions = token.add_subparsers(dest="token_command", metavar="{keygen,issue}")

    keygen = actions.add_parser("keygen", help="write a new signing key pair and a JWKS")
    keygen.add_argument("--alg", choices=KEYGEN_ALGORITHMS, default="EdDSA", help="default: EdDSA")
    keygen.add_argument("--out-dir", default="var/keys", help="default: var/keys")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.set_defaults(func=keygen_command)

    issue = actions.add_parser("issue", help="print a signed JWT")
    key = issue.add_mutually_exclusive_group(required=True)
    key.add_argument("--key", help="private key PEM (from `token keygen`)")
    key.add_argument("--secret-env", help="name of an environment variable holding an HS256 secret")
    issue.add_argument("--sub", required=True, help="the user (sub claim)")
    issue.add_argument("--agent", help="the agent (agent_id claim)")
    issue.add_argument("--roles", default="", help="comma-separated roles")
    issue.add_argument("--teams", default="", help="comma-separated teams (groups claim)")
    issue.add_argument("--tenant", help="tenant claim")
    issue.add_argument("--scopes", default="", help="comma- or space-separated scopes (scope claim)")
    issue.add_argument("--ttl", default="1h", help="lifetime: 90s, 15m, 1h, 7d (default 1h)")
    issue.add_argument("--iss", required=True, help="issuer; must equal auth.issuer")
    issue.add_argument("--aud", required=True, help="audience; must equal auth.audience")
    issue.add_argument("--kid", help="key id header (default: the key's RFC 7638 thumbprint)")
    issue.set_defaults(func=issue_command)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def thumbprint(public_key: PublicKeyTypes) -> str:
    """The RFC 7638 JWK thumbprint (base64url SHA-256), used as the default ``kid``.

    Raises:
        CommandError: the key type is not RSA, EC or Ed25519.
    """
    jwk = public_jwk(public_key)
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    required = {name: jwk[name] for name in members[jwk["kty"]]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def public_jwk(public_key: PublicKeyTypes) -> dict[str, Any]:
    """The public key as a JWK dict.

    Raises:
        CommandError: the key type is not RSA, EC or Ed25519.
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        return dict(RSAAlgorithm.to_jwk(public_key, as_dict=True))
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(public_key, as_dict=True))
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return dict(OKPAlgorithm.to_jwk(public_key, as_dict=True))
    raise CommandError(f"unsupported key type {type(public_key).__name__}")


def _algorithm_for(private_key: PrivateKeyTypes) -> str:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if private_key.curve.name in by_curve:
            return by_curve[private_key.curve.name]
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "RS256"
    raise CommandError(f"unsupported private key type {type(private_key).__name__}")


def _generate(alg: str) -> SigningKey:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise CommandError(f"{path} already exists (use --force to overwrite)") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def keygen(alg: str, out_dir: Path, *, force: bool = False) -> dict[str, Path | str]:
    """Write ``private.pem`` (0600), ``public.pem`` and ``jwks.json`` under ``out_dir``.

    Returns the paths and the ``kid``.

    Raises:
        CommandError: a file exists (without ``force``) or ``alg`` is not supported.
        OSError: the directory or files cannot be written.
    """
    if alg not in KEYGEN_ALGORITHMS:
        raise CommandError(f"--alg must be one of {', '.join(KEYGEN_ALGORITHMS)}")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_key = _generate(alg)
    public_key = private_key.public_key()
    kid = thumbprint(public_key)
    jwk = {**public_jwk(public_key), "kid": kid, "alg": alg, "use": "sig"}
    paths = {name: out_dir / name for name in ("private.pem", "public.pem", "jwks.json")}
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not force:  # before writing any: a new private key must not sit beside an old public one
        raise CommandError(f"{', '.join(existing)}: already exists (use --force to overwrite)")
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(paths["private.pem"], private_pem, 0o600, force)
    _write(paths["public.pem"], public_pem, 0o644, force)
    _write(paths["jwks.json"], (json.dumps({"keys": [jwk]}, indent=2) + "\n").encode(), 0o644, force)
    return {"kid": kid, "alg": alg, **paths}


def parse_ttl(text: str) -> int:
    """Seconds in a lifetime like ``90``, ``90s``, ``15m``, ``1h``, ``7d``.

    Raises:
        CommandError: the text is not such a lifetime, is zero, or exceeds a year.
    """
    match = _TTL.match(text.strip())
    if not match:
        raise CommandError(f"--ttl {text!r}: use a number with s, m, h or d (e.g. 1h)")
    seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)]
    if not 0 < seconds <= MAX_TTL_S:
        raise CommandError(f"--ttl {text!r}: must be between 1s and 366d")
    return seconds


def _split(text: str) -> list[str]:
    return [item for item in re.split(r"[,\s]+", text) if item]


def issue(args: argparse.Namespace, environ: dict[str, str] | None = None, now: float | None = None) -> str:
    """Sign a JWT from ``token issue`` arguments and return it.

    Raises:
        CommandError: the key cannot be read or used, or an argument is invalid.
    """
    environ = dict(os.environ) if environ is None else environ
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": args.iss,
        "aud": args.aud,
        "sub": args.sub,
        "iat": issued_at,
        "exp": issued_at + parse_ttl(args.ttl),
        "jti": secrets.token_urlsafe(12),
    }
    optional = {
        "agent_id": args.agent,
        "tenant": args.tenant,
        "roles": _split(args.roles),
        "groups": _split(args.teams),
        "scope": " ".join(_split(args.scopes)),
    }
    claims.update({name: value for name, value in optional.items() if value})
    headers: dict[str, Any] = {"typ": "JWT"}
    if args.secret_env:
        secret = environ.get(args.secret_env, "")
        if len(secret.encode()) < 32:
            raise CommandError(f"${args.secret_env} must hold an HS256 secret of at least 32 bytes")
        if args.kid:
            headers["kid"] = args.kid
        return jwt.encode(claims, secret, algorithm="HS256", headers=headers)
    private_key = _load_private_key(Path(args.key))
    headers["kid"] = args.kid or thumbprint(private_key.public_key())
    return jwt.encode(claims, private_key, algorithm=_algorithm_for(private_key), headers=headers)


def _load_private_key(path: Path) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read --key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CommandError(f"--key {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CommandError(f"--key {path}: unsupported key type {type(key).__name__}")
    return key


def keygen_command(args: argparse.Namespace) -> int:
    """``mcp-guard token keygen``: returns 0, or 1 after printing what went wrong."""
    try:
        result = keygen(args.alg, Path(args.out_dir), force=args.force)
    except (CommandError, OSError) as exc:
        print(f"mcp-guard token keygen: {exc}", file=sys.stderr)
        return 1
    print(f"private key: {result['private.pem']} (mode 0600; keep it secret)")
    print(f"public key:  {result['public.pem']}")
    print(f"JWKS:        {result['jwks.json']}  (kid {result['kid']})")
    print("\nauth config:")
    print(f"  keys:\n    - jwks_file: {result['jwks.json']}\n      algorithms: [{result['alg']}]")
    return 0


def issue_command(args: argparse.Namespace) -> int:
    """``mcp-guard token issue``: prints the JWT and returns 0, or 1 after printing the problem."""
    try:
        token = issue(args)
    except CommandError as exc:
        print(f"mcp-guard token issue: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0
