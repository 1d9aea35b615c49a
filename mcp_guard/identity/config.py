"""Configuration of token verification: trusted issuer, audience, keys and claim mapping.

Everything here is validated when the configuration is loaded, so a key source that
mixes HMAC with public-key algorithms, allows ``none``, or points a JWKS URL at a
plain-HTTP remote host is refused before the gateway starts.
"""

from __future__ import annotations

import re
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from mcp_guard.principal import Principal

Algorithm = Literal[
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]

HMAC_ALGORITHMS: frozenset[str] = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS: frozenset[str] = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS: frozenset[str] = frozenset({"ES256", "ES384", "ES512"})
OKP_ALGORITHMS: frozenset[str] = frozenset({"EdDSA"})

HMAC_MIN_SECRET_BYTES: dict[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}
"""RFC 7518 §3.2: an HMAC key must be at least as long as the hash output."""

KID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
"""The only ``kid`` values accepted, in tokens, JWKS documents and configuration."""

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class KeySource(BaseModel):
    """One place verification keys come from, with the algorithms it may verify.

    Exactly one of ``secret`` (HMAC), ``public_key_file`` (PEM), ``jwks_file`` or
    ``jwks_url`` is set. ``kid`` (for ``secret`` and ``public_key_file``) makes the
    key answer only tokens carrying that key id; without it the key is tried for
    any token whose algorithm it allows.
    """

    # Errors never echo the input: it may hold the secret.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    algorithms: list[Algorithm] = Field(min_length=1)
    secret: SecretStr | None = None
    public_key_file: str | None = None
    jwks_file: str | None = None
    jwks_url: str | None = None
    kid: str | None = None

    @field_validator("algorithms", mode="before")
    @classmethod
    def _refuse_none(cls, value: object) -> object:
        if isinstance(value, list) and any(str(a).lower() == "none" for a in value):
            raise ValueError("algorithm 'none' is never allowed")
        return value

    @field_validator("kid")
    @classmethod
    def _kid_format(cls, value: str | None) -> str | None:
        if value is not None and not KID_PATTERN.fullmatch(value):
            raise ValueError(f"kid {value!r} must match [A-Za-z0-9._-]{{1,128}}")
        return value

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value
        if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
            return value
        raise ValueError(f"jwks_url {value!r} must be https (plain http only for localhost)")

    @model_validator(mode="after")
    def _one_source_one_family(self) -> Self:
        given = [
            name
            for name in ("secret", "public_key_file", "jwks_file", "jwks_url")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                "a key source needs exactly one of secret, public_key_file, jwks_file, jwks_url "
                f"(found: {found})"
            )
        algs = set(self.algorithms)
        hmac = algs & HMAC_ALGORITHMS
        if hmac and algs - HMAC_ALGORITHMS:
            raise ValueError(
                f"algorithms {sorted(algs)} mix HMAC and public-key algorithms; "
                "use one key source for each (this is what key-confusion attacks exploit)"
            )
        if self.secret is not None:
            if not hmac:
                raise ValueError(f"a secret can only verify HS256/HS384/HS512, not {sorted(algs)}")
            length = len(self.secret.get_secret_value().encode())
            needed = max(HMAC_MIN_SECRET_BYTES[a] for a in hmac)
            if length < needed:
                raise ValueError(
                    f"secret is {length} bytes; {'/'.join(sorted(hmac))} needs at least {needed}"
                )
        elif hmac:
            raise ValueError(f"HMAC algorithms {sorted(hmac)} need a 'secret', not a public key")
        if self.kid is not None and self.secret is None and self.public_key_file is None:
            raise ValueError("kid is only for secret and public_key_file; JWKS keys carry their own")
        return self


class ClaimMapping(BaseModel):
    """Which token claims fill which Principal fields.

    A name is looked up as a top-level claim first (so Auth0-style namespaced claims
    such as ``https://example.com/roles`` work), then as a dotted path into nested
    objects (Keycloak's ``realm_access.roles``). ``agent`` and ``scopes`` take the
    first claim present. A string value is split on whitespace, a list is taken
    item by item.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    user: str = "sub"
    agent: list[str] = Field(default_factory=lambda: ["agent_id", "azp", "client_id"])
    roles: list[str] = Field(default_factory=lambda: ["roles"])
    teams: list[str] = Field(default_factory=lambda: ["groups"])
    tenant: list[str] = Field(default_factory=lambda: ["tenant"])
    scopes: list[str] = Field(default_factory=lambda: ["scope", "scp"])

    @field_validator("agent", "roles", "teams", "tenant", "scopes", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class AuthConfig(BaseModel):
    """How the gateway verifies bearer tokens and turns them into a Principal.

    ``audience`` is the gateway's own resource URI (e.g. ``http://127.0.0.1:8765/mcp``);
    a token must name it in ``aud``. ``secret`` values may come from ``${ENV_VAR}``
    references: the configuration loader interpolates them before this model sees them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    keys: list[KeySource] = Field(min_length=1)
    claims: ClaimMapping = Field(default_factory=ClaimMapping)
    leeway_s: int = Field(default=30, ge=0, le=300)
    max_token_bytes: int = Field(default=8192, ge=256, le=65536)
    required_scopes: list[str] = Field(default_factory=list)
    authorization_servers: list[str] | None = None
    scopes_supported: list[str] | None = None
    resource_name: str | None = None
    jwks_refresh_interval_s: float = Field(default=60.0, ge=1.0, le=86400.0)
    jwks_cache_ttl_s: float = Field(default=3600.0, ge=10.0, le=7 * 86400.0)
    jwks_fetch_timeout_s: float = Field(default=5.0, gt=0.0, le=60.0)
    jwks_max_bytes: int = Field(default=512 * 1024, ge=1024, le=16 * 1024 * 1024)
    verified_cache_size: int = Field(default=4096, ge=0, le=1_000_000)
    verified_cache_ttl_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    stdio_local_principal: Principal | None = None
    token_env: str = Field(default="MCP_GUARD_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @property
    def algorithms(self) -> frozenset[str]:
        """Every algorithm some key source allows."""
        return frozenset(a for source in self.keys for a in source.algorithms)

    def metadata_authorization_servers(self) -> list[str]:
        """The authorization servers to advertise (default: the issuer)."""
        return list(self.authorization_servers) if self.authorization_servers else [self.issuer]

    def metadata_scopes(self) -> list[str] | None:
        """The scopes to advertise (default: the required scopes, if any)."""
        if self.scopes_supported is not None:
            return list(self.scopes_supported)
        return list(self.required_scopes) or None
