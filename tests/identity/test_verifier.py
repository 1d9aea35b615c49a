"""TokenVerifier: what it accepts, what it refuses and why (with real signatures)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.identity import AuthConfig, AuthError, TokenVerifier
from mcp_guard.principal import Principal
from tests.identity.identity_support import (
    AUDIENCE,
    ISSUER,
    SECRET,
    KeyPair,
    Sign,
    claims,
    make_config,
    write_jwks,
)

pytestmark = pytest.mark.anyio

NO_KID = "token has no key id (kid), and every trusted key for its algorithm needs one"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


async def refusal(verifier: TokenVerifier, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await verifier.verify(token)
    error = caught.value
    assert error.code == "invalid_token"
    assert error.status == 401
    # Never leaks key material or internals.
    assert SECRET not in error.description
    assert "BEGIN" not in error.description
    assert "Error" not in error.description and "Traceback" not in error.description
    return error


@pytest.fixture
def all_algorithms_verifier(pem_files: dict[str, Path]) -> TokenVerifier:
    return TokenVerifier(
        make_config(
            [
                {"secret": SECRET, "algorithms": ["HS256"]},
                {"public_key_file": str(pem_files["ES256"]), "algorithms": ["ES256"]},
                {"public_key_file": str(pem_files["EdDSA"]), "algorithms": ["EdDSA"]},
                {"public_key_file": str(pem_files["RS256"]), "algorithms": ["RS256"]},
            ]
        )
    )


@pytest.mark.parametrize("alg", ["HS256", "ES256", "EdDSA", "RS256"])
async def test_a_valid_token_becomes_the_principal_its_claims_describe(
    all_algorithms_verifier: TokenVerifier, sign: Sign, alg: str
) -> None:
    principal = await all_algorithms_verifier.verify(sign(alg))
    assert principal == Principal(
        user="alice",
        agent="claude-desktop",
        roles=frozenset({"engineer"}),
        teams=frozenset({"platform"}),
        tenant="acme",
        scopes=frozenset({"tools:call", "tools:list"}),
        issuer=ISSUER,
    )


async def test_alg_none_is_refused(hs_verifier: TokenVerifier) -> None:
    token = raw_jwt({"alg": "none", "typ": "JWT"}, claims())
    assert (await refusal(hs_verifier, token)).description == "token algorithm is not allowed"


async def test_hs256_signed_with_the_rsa_public_key_as_secret_is_refused(
    pem_files: dict[str, Path], key_pairs: dict[str, KeyPair]
) -> None:
    # The classic key-confusion attack: the public PEM is public, so an attacker can HMAC with it.
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims(sub="mallory")).encode())
    mac = hmac.new(key_pairs["RS256"].public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{b64(mac)}"

    rsa_only = TokenVerifier(
        make_config([{"public_key_file": str(pem_files["RS256"]), "algorithms": ["RS256"]}])
    )
    assert (await refusal(rsa_only, forged)).description == "token algorithm is not allowed"

    rsa_and_secret = TokenVerifier(
        make_config(
            [
                {"public_key_file": str(pem_files["RS256"]), "algorithms": ["RS256"]},
                {"secret": SECRET, "algorithms": ["HS256"]},
            ]
        )
    )
    assert (await refusal(rsa_and_secret, forged)).description == "token signature is invalid"


async def test_an_expired_token_is_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    token = sign(exp=int(time.time()) - 120, iat=int(time.time()) - 600)
    assert (await refusal(hs_verifier, token)).description == "token has expired"


async def test_a_token_expired_within_the_leeway_is_still_accepted(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    assert (await hs_verifier.verify(sign(exp=int(time.time()) - 5))).user == "alice"


async def test_a_token_whose_nbf_is_in_the_future_is_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    token = sign(nbf=int(time.time()) + 600)
    assert (await refusal(hs_verifier, token)).description.startswith("token is not valid yet")


async def test_a_token_for_another_audience_is_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    token = sign(aud="https://other.example.test/mcp")
    assert (await refusal(hs_verifier, token)).description == "token audience (aud) is not this resource"


async def test_a_token_from_another_issuer_is_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    token = sign(iss="https://evil.example.test/")
    assert (await refusal(hs_verifier, token)).description == "token issuer (iss) is not trusted"


@pytest.mark.parametrize("claim", ["exp", "iss", "aud"])
async def test_a_token_missing_a_required_claim_is_refused(
    hs_verifier: TokenVerifier, sign: Sign, claim: str
) -> None:
    token = sign(**{claim: None})
    assert (await refusal(hs_verifier, token)).description == f"token is missing the required '{claim}' claim"


async def test_a_token_without_a_subject_is_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    assert (
        await refusal(hs_verifier, sign(sub=None))
    ).description == "token has no 'sub' claim naming the user"


async def test_a_token_naming_an_unknown_kid_is_refused(
    tmp_path: Path, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    jwks = write_jwks(tmp_path / "jwks.json", [key_pairs["ES256"].jwk("known")])
    verifier = TokenVerifier(make_config([{"jwks_file": str(jwks), "algorithms": ["ES256"]}]))
    assert (await verifier.verify(sign("ES256", kid="known"))).user == "alice"
    assert (
        await refusal(verifier, sign("ES256", kid="unknown"))
    ).description == "token key id (kid) is unknown"


def hs256(header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return (
        f"{signing_input}.{b64(hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest())}"
    )


@pytest.mark.parametrize("kid", ["../../etc/passwd", "k1' OR '1'='1", "k1;DROP TABLE keys", "a" * 129, ""])
async def test_a_kid_with_path_or_sql_characters_is_refused(
    hs_verifier: TokenVerifier, sign: Sign, kid: Any
) -> None:
    token = sign(headers={"kid": kid})
    assert (await refusal(hs_verifier, token)).description == "token key id (kid) is malformed"


async def test_a_kid_that_is_not_a_string_is_refused(hs_verifier: TokenVerifier) -> None:
    token = hs256({"alg": "HS256", "kid": 7}, claims())
    assert (await refusal(hs_verifier, token)).description in {
        "token is malformed",
        "token key id (kid) is malformed",
    }


async def test_a_token_with_a_tampered_payload_is_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    header, _, signature = sign().split(".")
    forged_payload = b64(json.dumps(claims(sub="mallory", roles=["admin"])).encode())
    forged = f"{header}.{forged_payload}.{signature}"
    assert (await refusal(hs_verifier, forged)).description == "token signature is invalid"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-12],
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.split(".")[0],
        lambda _t: "garbage",
        lambda _t: "not.a.jwt",
        lambda _t: "e30.e30.e30",
        lambda t: t + "é",
    ],
    ids=[
        "truncated-signature",
        "no-signature",
        "header-only",
        "garbage",
        "dots",
        "empty-objects",
        "non-ascii",
    ],
)
async def test_a_truncated_or_garbage_token_is_refused(
    hs_verifier: TokenVerifier, sign: Sign, mangle: Any
) -> None:
    description = (await refusal(hs_verifier, mangle(sign()))).description
    assert description in {
        "token is malformed",
        "token signature is invalid",
        "token algorithm is not allowed",
    }


async def test_an_oversized_token_is_refused_before_parsing(hs_verifier: TokenVerifier, sign: Sign) -> None:
    token = sign(padding="x" * 9000)
    assert (await refusal(hs_verifier, token)).description == "token is larger than 8192 bytes"


async def test_an_algorithm_outside_the_allowlist_is_refused_even_with_a_valid_signature(
    pem_files: dict[str, Path], sign: Sign
) -> None:
    verifier = TokenVerifier(
        make_config([{"public_key_file": str(pem_files["ES256"]), "algorithms": ["ES256"]}])
    )
    assert (await refusal(verifier, sign("HS256"))).description == "token algorithm is not allowed"


async def test_a_token_signed_by_an_untrusted_key_is_refused(pem_files: dict[str, Path]) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ed25519

    verifier = TokenVerifier(
        make_config([{"public_key_file": str(pem_files["EdDSA"]), "algorithms": ["EdDSA"]}])
    )
    token = jwt.encode(claims(), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA")
    assert (await refusal(verifier, token)).description == "token signature is invalid"


async def test_a_key_with_a_configured_kid_only_answers_tokens_naming_it(sign: Sign) -> None:
    verifier = TokenVerifier(make_config([{"secret": SECRET, "algorithms": ["HS256"], "kid": "local-1"}]))
    assert (await verifier.verify(sign(kid="local-1"))).user == "alice"
    assert (await refusal(verifier, sign(kid="local-2"))).description == "token key id (kid) is unknown"
    assert (await refusal(verifier, sign())).description == NO_KID


async def test_a_public_key_with_a_configured_kid_refuses_a_token_without_kid(
    pem_files: dict[str, Path], sign: Sign
) -> None:
    verifier = TokenVerifier(
        make_config([{"public_key_file": str(pem_files["RS256"]), "algorithms": ["RS256"], "kid": "rsa-1"}])
    )
    assert (await verifier.verify(sign("RS256", kid="rsa-1"))).user == "alice"
    assert (await refusal(verifier, sign("RS256"))).description == NO_KID


async def test_a_token_without_kid_is_verified_by_the_key_configured_without_one(
    pem_files: dict[str, Path], sign: Sign
) -> None:
    verifier = TokenVerifier(
        make_config(
            [
                {"secret": SECRET, "algorithms": ["HS256"], "kid": "local-1"},
                {"public_key_file": str(pem_files["ES256"]), "algorithms": ["ES256"]},
            ]
        )
    )
    assert (await verifier.verify(sign("ES256"))).user == "alice"
    assert (await refusal(verifier, sign())).description == NO_KID


# --- claim mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("present", "agent"),
    [
        ({"agent_id": "agent-x", "azp": "azp-x", "client_id": "cid-x"}, "agent-x"),
        ({"agent_id": None, "azp": "azp-x", "client_id": "cid-x"}, "azp-x"),
        ({"agent_id": None, "client_id": "cid-x"}, "cid-x"),
        ({"agent_id": None}, None),
    ],
)
async def test_the_agent_falls_back_from_agent_id_to_azp_to_client_id(
    hs_verifier: TokenVerifier, sign: Sign, present: dict[str, Any], agent: str | None
) -> None:
    assert (await hs_verifier.verify(sign(**present))).agent == agent


async def test_scopes_come_from_a_space_separated_scope_or_an_scp_list(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    from_string = await hs_verifier.verify(sign(scope="a b  c"))
    from_list = await hs_verifier.verify(sign(scope=None, scp=["a", "b", "c"]))
    assert from_string.scopes == from_list.scopes == frozenset({"a", "b", "c"})


async def test_claim_mapping_follows_namespaced_claims_and_dotted_paths(sign: Sign) -> None:
    verifier = TokenVerifier(
        make_config(
            [{"secret": SECRET, "algorithms": ["HS256"]}],
            claims={
                "user": "email",
                "agent": "azp",
                "roles": "realm_access.roles",
                "teams": "https://example.com/teams",
                "tenant": "org_id",
            },
        )
    )
    principal = await verifier.verify(
        sign(
            email="alice@example.com",
            azp="vscode",
            realm_access={"roles": ["admin", "dev"]},
            **{"https://example.com/teams": ["sre"]},
            org_id="org-7",
        )
    )
    assert (principal.user, principal.agent, principal.tenant) == ("alice@example.com", "vscode", "org-7")
    assert principal.roles == frozenset({"admin", "dev"}) and principal.teams == frozenset({"sre"})


async def test_a_mapped_claim_of_the_wrong_type_is_refused(hs_verifier: TokenVerifier, sign: Sign) -> None:
    error = await refusal(hs_verifier, sign(roles={"not": "a list"}))
    assert error.description == "token claim 'roles' must be a string or a list of strings"


# --- the verified-token cache --------------------------------------------------------------


async def test_a_verified_token_is_served_from_cache_only_until_it_expires(
    hs_config: AuthConfig, sign: Sign
) -> None:
    now = [time.time()]
    verifier = TokenVerifier(hs_config, wall_clock=lambda: now[0])
    token = sign(exp=int(now[0]) + 20)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # a cache hit: the very same object

    now[0] += 20 + hs_config.leeway_s + 1  # past exp + leeway: the cache must not answer
    assert verifier._cache.get(hashlib.sha256(token.encode()).digest(), now[0], hs_config.leeway_s) is None


async def test_the_cache_never_holds_more_than_its_size(sign: Sign) -> None:
    verifier = TokenVerifier(
        make_config([{"secret": SECRET, "algorithms": ["HS256"]}], verified_cache_size=2)
    )
    tokens = [sign(sub=f"user-{i}") for i in range(5)]
    for token in tokens:
        await verifier.verify(token)
    assert len(verifier._cache._entries) == 2
    assert (await verifier.verify(tokens[0])).user == "user-0"  # evicted entries are simply re-verified


async def test_an_audience_list_containing_this_resource_is_accepted(
    hs_verifier: TokenVerifier, sign: Sign
) -> None:
    assert (await hs_verifier.verify(sign(aud=["https://other.test", AUDIENCE]))).user == "alice"
