"""Keys from JWKS documents: a file, and a URL served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.identity import AuthError, TokenVerifier
from tests.identity.identity_support import KeyPair, Sign, make_config, write_jwks

pytestmark = pytest.mark.anyio


class JwksServer:
    """A real HTTP server publishing a JWKS that tests can change, counting requests."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.body_override: bytes | None = None
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = server.body_override or json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"

    def publish(self, *jwks: dict[str, Any]) -> None:
        self.document = {"keys": list(jwks)}


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def url_verifier(server: JwksServer, clock: FakeClock, **fields: Any) -> TokenVerifier:
    config = make_config([{"jwks_url": server.url, "algorithms": ["ES256", "EdDSA"]}], **fields)
    return TokenVerifier(config, clock=clock)


async def test_keys_are_read_from_a_jwks_file(
    tmp_path: Path, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    jwks = write_jwks(
        tmp_path / "jwks.json", [key_pairs["ES256"].jwk("es-1"), key_pairs["EdDSA"].jwk("ed-1")]
    )
    verifier = TokenVerifier(make_config([{"jwks_file": str(jwks), "algorithms": ["ES256", "EdDSA"]}]))
    assert (await verifier.verify(sign("ES256", kid="es-1"))).user == "alice"
    assert (await verifier.verify(sign("EdDSA", kid="ed-1"))).user == "alice"


async def test_a_jwks_key_is_never_used_with_an_algorithm_it_does_not_name(
    tmp_path: Path, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    # The EdDSA key is published under kid "ed-1"; an ES256 token claiming that kid must fail.
    jwks = write_jwks(tmp_path / "jwks.json", [key_pairs["EdDSA"].jwk("ed-1")])
    verifier = TokenVerifier(make_config([{"jwks_file": str(jwks), "algorithms": ["ES256", "EdDSA"]}]))
    with pytest.raises(AuthError, match=r"token key id \(kid\) is unknown"):
        await verifier.verify(sign("ES256", kid="ed-1"))


async def test_a_token_without_kid_is_refused_when_every_jwks_key_has_one(
    tmp_path: Path, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    jwks = write_jwks(tmp_path / "jwks.json", [key_pairs["EdDSA"].jwk("ed-1")])
    verifier = TokenVerifier(make_config([{"jwks_file": str(jwks), "algorithms": ["EdDSA"]}]))
    with pytest.raises(AuthError) as caught:
        await verifier.verify(sign("EdDSA"))
    assert caught.value.description == (
        "token has no key id (kid), and every trusted key for its algorithm needs one"
    )


async def test_a_jwks_key_published_without_kid_answers_a_token_without_kid(
    tmp_path: Path, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    kidless = {k: v for k, v in key_pairs["EdDSA"].jwk("unused").items() if k != "kid"}
    jwks = write_jwks(tmp_path / "jwks.json", [kidless])
    verifier = TokenVerifier(make_config([{"jwks_file": str(jwks), "algorithms": ["EdDSA"]}]))
    assert (await verifier.verify(sign("EdDSA"))).user == "alice"


async def test_symmetric_and_malformed_jwks_entries_are_skipped(
    tmp_path: Path, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    jwks = write_jwks(
        tmp_path / "jwks.json",
        [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "kid": "../../etc/passwd", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            key_pairs["ES256"].jwk("good"),
        ],
    )
    verifier = TokenVerifier(make_config([{"jwks_file": str(jwks), "algorithms": ["ES256"]}]))
    assert (await verifier.verify(sign("ES256", kid="good"))).user == "alice"


async def test_keys_are_fetched_from_a_jwks_url_on_first_use_and_then_cached(
    jwks_server: JwksServer, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    jwks_server.publish(key_pairs["ES256"].jwk("k1"))
    verifier = url_verifier(jwks_server, FakeClock(), verified_cache_size=0)
    assert jwks_server.requests == 0
    for _ in range(3):
        assert (await verifier.verify(sign("ES256", kid="k1"))).user == "alice"
    assert jwks_server.requests == 1


async def test_an_unknown_kid_refetches_the_jwks_so_rotated_keys_work_at_once(
    jwks_server: JwksServer, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    clock = FakeClock()
    jwks_server.publish(key_pairs["ES256"].jwk("old"))
    verifier = url_verifier(jwks_server, clock)
    await verifier.verify(sign("ES256", kid="old"))

    clock.now += 61  # beyond jwks_refresh_interval_s (60)
    jwks_server.publish(key_pairs["ES256"].jwk("old"), key_pairs["EdDSA"].jwk("new"))
    assert (await verifier.verify(sign("EdDSA", kid="new"))).user == "alice"
    assert jwks_server.requests == 2


async def test_unknown_kids_refetch_at_most_once_per_refresh_interval(
    jwks_server: JwksServer, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    clock = FakeClock()
    jwks_server.publish(key_pairs["ES256"].jwk("k1"))
    verifier = url_verifier(jwks_server, clock)
    await verifier.verify(sign("ES256", kid="k1"))
    assert jwks_server.requests == 1

    clock.now += 61
    for attempt in range(20):  # a flood of made-up kids
        with pytest.raises(AuthError, match=r"token key id \(kid\) is unknown"):
            await verifier.verify(sign("ES256", kid=f"made-up-{attempt}"))
    assert jwks_server.requests == 2  # one refetch for the whole flood

    clock.now += 30  # still inside the interval: the new key is not seen yet
    jwks_server.publish(key_pairs["ES256"].jwk("k1"), key_pairs["EdDSA"].jwk("k2"))
    with pytest.raises(AuthError, match=r"token key id \(kid\) is unknown"):
        await verifier.verify(sign("EdDSA", kid="k2"))
    assert jwks_server.requests == 2

    clock.now += 31  # the interval has passed: one more fetch finds it
    assert (await verifier.verify(sign("EdDSA", kid="k2"))).user == "alice"
    assert jwks_server.requests == 3


async def test_a_stale_jwks_is_refetched_after_its_cache_ttl(
    jwks_server: JwksServer, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    clock = FakeClock()
    jwks_server.publish(key_pairs["ES256"].jwk("k1"))
    verifier = url_verifier(jwks_server, clock, verified_cache_size=0, jwks_cache_ttl_s=600)
    await verifier.verify(sign("ES256", kid="k1"))
    clock.now += 601
    await verifier.verify(sign("ES256", kid="k1"))
    assert jwks_server.requests == 2


async def test_a_failing_jwks_endpoint_keeps_the_keys_already_known(
    jwks_server: JwksServer, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    clock = FakeClock()
    jwks_server.publish(key_pairs["ES256"].jwk("k1"))
    verifier = url_verifier(jwks_server, clock, verified_cache_size=0, jwks_cache_ttl_s=600)
    await verifier.verify(sign("ES256", kid="k1"))

    jwks_server.status = 500
    clock.now += 601
    assert (await verifier.verify(sign("ES256", kid="k1"))).user == "alice"
    assert jwks_server.requests == 2


async def test_an_oversized_jwks_response_is_not_accepted(
    jwks_server: JwksServer, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    jwks_server.publish(key_pairs["ES256"].jwk("k1"), *[{"kty": "oct", "k": "x" * 1000}] * 4)
    verifier = url_verifier(jwks_server, FakeClock(), jwks_max_bytes=2048)
    with pytest.raises(AuthError, match=r"token key id \(kid\) is unknown"):
        await verifier.verify(sign("ES256", kid="k1"))
    assert jwks_server.requests == 1


async def test_an_unreachable_jwks_url_refuses_tokens_without_hanging(
    key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = make_config(
        [{"jwks_url": f"http://127.0.0.1:{port}/jwks", "algorithms": ["ES256"]}], jwks_fetch_timeout_s=2
    )
    verifier = TokenVerifier(config, clock=FakeClock())
    with pytest.raises(AuthError, match=r"token key id \(kid\) is unknown"):
        await verifier.verify(sign("ES256", kid="k1"))


async def test_concurrent_tokens_with_a_rotated_kid_share_one_refetch(
    jwks_server: JwksServer, key_pairs: dict[str, KeyPair], sign: Sign
) -> None:
    import anyio

    clock = FakeClock()
    jwks_server.publish(key_pairs["ES256"].jwk("old"))
    verifier = url_verifier(jwks_server, clock, verified_cache_size=0)
    await verifier.verify(sign("ES256", kid="old"))
    clock.now += 61
    jwks_server.publish(key_pairs["EdDSA"].jwk("new"))
    users: list[str] = []

    async def verify_one() -> None:
        users.append((await verifier.verify(sign("EdDSA", kid="new"))).user)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(verify_one)
    assert users == ["alice"] * 5
    assert jwks_server.requests == 2
