"""Verifying a bearer JWT and turning it into a Principal.

The order of checks is deliberate: size and shape first (cheap, and bounds the work
an attacker can cause), then the header's ``alg`` against the configured allowlist
and its ``kid`` against a strict pattern, then key selection, then PyJWT does the
signature and the registered claims (``exp``, ``nbf``, ``iat``, ``iss``, ``aud``).
Tokens already verified are remembered briefly (bounded LRU keyed by a digest of the
raw token, never beyond ``exp``) so a busy client does not pay for a signature check
on every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from mcp_guard.identity.claims import principal_from_claims
from mcp_guard.identity.config import KID_PATTERN, AuthConfig
from mcp_guard.identity.errors import INVALID_TOKEN, AuthError
from mcp_guard.identity.jwks import Clock, RemoteJwks
from mcp_guard.identity.keys import VerificationKey, load_static_keys
from mcp_guard.principal import Principal

MAX_KEYS_TRIED = 8
"""A token without ``kid`` is tried against at most this many keys."""
TOKEN_EXPIRED = "token has expired"
"""Why an expired token is refused, over HTTP and stdio alike."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What a successful verification yields: the Principal and the token's time bounds."""

    principal: Principal
    expires_at: int
    not_before: int | None
    audience: str


class _VerifiedCache:
    """A bounded LRU of verified tokens; an entry is served only inside its validity window."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._entries: OrderedDict[bytes, tuple[float, VerifiedToken]] = OrderedDict()

    def get(self, digest: bytes, now: float, leeway: int) -> VerifiedToken | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        valid_until, verified = entry
        if now >= valid_until:
            del self._entries[digest]
            return None
        if verified.not_before is not None and now < verified.not_before - leeway:
            return None
        self._entries.move_to_end(digest)
        return verified

    def put(self, digest: bytes, verified: VerifiedToken, now: float, leeway: int) -> None:
        if self.size == 0 or self.ttl_s == 0:
            return
        self._entries[digest] = (min(verified.expires_at + leeway, now + self.ttl_s), verified)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def _invalid(description: str) -> AuthError:
    return AuthError(INVALID_TOKEN, description)


def _explain(exc: jwt.PyJWTError) -> AuthError:
    """A client-safe description of why PyJWT refused a token (never key material)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return _invalid(TOKEN_EXPIRED)
    if isinstance(exc, jwt.ImmatureSignatureError):
        return _invalid("token is not valid yet (nbf or iat is in the future)")
    if isinstance(exc, jwt.InvalidAudienceError):
        return _invalid("token audience (aud) is not this resource")
    if isinstance(exc, jwt.InvalidIssuerError):
        return _invalid("token issuer (iss) is not trusted")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return _invalid(f"token is missing the required '{exc.claim}' claim")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return _invalid("token algorithm is not allowed")
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return _invalid("token issued-at (iat) is invalid")
    if isinstance(exc, jwt.InvalidSignatureError | jwt.InvalidKeyError):
        return _invalid("token signature is invalid")
    if isinstance(exc, jwt.DecodeError):
        return _invalid("token is malformed")
    return _invalid("token is invalid")


_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+={0,2})\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]*={0,2}")
"""The shape of a compact JWS; anything else is refused before any decoding."""


def _peek_header(token: str) -> dict[str, Any]:
    """The unverified JOSE header, read only to choose a key (PyJWT re-reads and checks it).

    Raises:
        AuthError: the token is not a compact JWS with a JSON-object header.
    """
    match = _COMPACT_JWS.fullmatch(token)
    if match is None:
        raise _invalid("token is malformed")
    segment = match.group(1).rstrip("=")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise _invalid("token is malformed") from None
    if not isinstance(header, dict):
        raise _invalid("token is malformed")
    return header


class TokenVerifier:
    """Verifies bearer JWTs against the configured issuer, audience and keys.

    Construct once per configuration and share it: it holds the loaded keys, the
    JWKS caches and the verified-token cache. ``clock`` (monotonic seconds) drives
    JWKS refresh timing and ``wall_clock`` (epoch seconds) the verified-token cache's
    expiry; both can be replaced in tests. ``exp``/``nbf`` themselves are checked by
    PyJWT against the real time.

    Raises:
        ConfigError: (from the constructor) a key file cannot be read or used.
    """

    def __init__(
        self, config: AuthConfig, *, clock: Clock = time.monotonic, wall_clock: Clock = time.time
    ) -> None:
        self.config = config
        self._wall_clock = wall_clock
        self._static: list[VerificationKey] = load_static_keys(config.keys)
        self._kidless_static = [key for key in self._static if key.kid is None]
        self._remote: list[RemoteJwks] = [
            RemoteJwks(
                source.jwks_url,
                frozenset(source.algorithms),
                origin=f"auth.keys[{index}]",
                refresh_interval_s=config.jwks_refresh_interval_s,
                cache_ttl_s=config.jwks_cache_ttl_s,
                timeout_s=config.jwks_fetch_timeout_s,
                max_bytes=config.jwks_max_bytes,
                clock=clock,
            )
            for index, source in enumerate(config.keys)
            if source.jwks_url is not None
        ]
        self._allowed = config.algorithms
        self._cache = _VerifiedCache(config.verified_cache_size, config.verified_cache_ttl_s)
        self._options: Any = {"require": ["exp", "iss", "aud"], "verify_signature": True}

    @property
    def remote_key_sets(self) -> list[RemoteJwks]:
        """The JWKS URLs this verifier fetches keys from."""
        return list(self._remote)

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` and return the Principal it describes.

        Raises:
            AuthError: the token is not acceptable; ``description`` says why, safely.
        """
        return (await self.authenticate(token)).principal

    async def authenticate(self, token: str) -> VerifiedToken:
        """Like :meth:`verify`, also returning the token's expiry (for transports).

        Raises:
            AuthError: the token is not acceptable; ``description`` says why, safely.
        """
        if not isinstance(token, str) or not token:
            raise _invalid("token is empty")
        if len(token) > self.config.max_token_bytes:
            raise _invalid(f"token is larger than {self.config.max_token_bytes} bytes")
        if not token.isascii():
            raise _invalid("token is malformed")
        digest = hashlib.sha256(token.encode("ascii")).digest()
        now = self._wall_clock()
        cached = self._cache.get(digest, now, self.config.leeway_s)
        if cached is not None:
            return cached
        verified = await self._verify_uncached(token)
        self._cache.put(digest, verified, now, self.config.leeway_s)
        return verified

    def clear_cache(self) -> None:
        """Forget every verified token (for example after rotating keys)."""
        self._cache.clear()

    async def _verify_uncached(self, token: str) -> VerifiedToken:
        header = _peek_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._allowed:
            raise _invalid("token algorithm is not allowed")
        kid = header.get("kid")
        if kid is not None and not (isinstance(kid, str) and KID_PATTERN.fullmatch(kid)):
            raise _invalid("token key id (kid) is malformed")
        candidates = await self._candidates(alg, kid)
        if not candidates:
            if kid is not None:
                raise _invalid("token key id (kid) is unknown")
            raise _invalid("token has no key id (kid), and every trusted key for its algorithm needs one")
        payload = self._decode(token, alg, candidates)
        principal = principal_from_claims(payload, self.config.claims)
        nbf = payload.get("nbf")
        return VerifiedToken(
            principal=principal,
            expires_at=int(payload["exp"]),
            not_before=int(nbf) if isinstance(nbf, int | float) else None,
            audience=self.config.audience,
        )

    def _decode(self, token: str, alg: str, candidates: list[VerificationKey]) -> dict[str, Any]:
        for key in candidates[:MAX_KEYS_TRIED]:
            try:
                payload: dict[str, Any] = jwt.decode(
                    token,
                    key.key,
                    algorithms=[alg],
                    audience=self.config.audience,
                    issuer=self.config.issuer,
                    leeway=self.config.leeway_s,
                    options=self._options,
                )
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue
            except jwt.PyJWTError as exc:
                raise _explain(exc) from None
            return payload
        raise _invalid("token signature is invalid")

    async def _candidates(self, alg: str, kid: str | None) -> list[VerificationKey]:
        for remote in self._remote:
            if remote.needs_refresh():
                await remote.ensure_fresh()
        if kid is None:  # a key configured or published with a kid only answers tokens naming it
            return [key for key in self._pool() if key.kid is None and alg in key.algorithms]
        exact = self._matching(alg, kid)
        if exact:
            return exact
        for remote in self._remote:
            await remote.refresh_for_unknown_kid()
        # Looked up again even when this task did not fetch: a concurrent one may have.
        exact = self._matching(alg, kid) if self._remote else []
        return exact + [key for key in self._kidless_static if alg in key.algorithms]

    def _pool(self) -> list[VerificationKey]:
        if not self._remote:
            return self._static
        return self._static + [key for remote in self._remote for key in remote.keys]

    def _matching(self, alg: str, kid: str) -> list[VerificationKey]:
        return [key for key in self._pool() if key.kid == kid and alg in key.algorithms]
