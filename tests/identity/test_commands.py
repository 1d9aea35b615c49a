"""`mcp-guard token keygen` and `token issue`, driven through argparse like the real CLI."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from mcp_guard.identity import TokenVerifier
from mcp_guard.identity.commands import register
from tests.identity.identity_support import AUDIENCE, ISSUER, make_config

pytestmark = pytest.mark.anyio


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mcp-guard")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def issue_argv(key: Path, *extra: str) -> list[str]:
    return ["token", "issue", "--key", str(key), "--iss", ISSUER, "--aud", AUDIENCE, *extra]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
async def test_a_keygen_then_issue_round_trip_verifies_through_the_jwks(
    alg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    assert run(["token", "keygen", "--alg", alg, "--out-dir", str(out)]) == 0
    assert stat.S_IMODE((out / "private.pem").stat().st_mode) == 0o600
    jwks = json.loads((out / "jwks.json").read_text())
    assert jwks["keys"][0]["alg"] == alg
    capsys.readouterr()

    argv = issue_argv(out / "private.pem", "--sub", "alice", "--agent", "cli", "--roles", "a,b")
    assert (
        run([*argv, "--teams", "x", "--tenant", "acme", "--scopes", "tools:call tools:list", "--ttl", "15m"])
        == 0
    )
    token = capsys.readouterr().out.strip()

    from_jwks = TokenVerifier(make_config([{"jwks_file": str(out / "jwks.json"), "algorithms": [alg]}]))
    from_pem = TokenVerifier(make_config([{"public_key_file": str(out / "public.pem"), "algorithms": [alg]}]))
    for verifier in (from_jwks, from_pem):
        principal = await verifier.verify(token)
        assert (principal.user, principal.agent, principal.tenant) == ("alice", "cli", "acme")
        assert principal.roles == {"a", "b"} and principal.teams == {"x"}
        assert principal.scopes == {"tools:call", "tools:list"}


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["token", "keygen", "--out-dir", str(tmp_path)]) == 0
    assert run(["token", "keygen", "--out-dir", str(tmp_path)]) == 1
    assert "already exists (use --force to overwrite)" in capsys.readouterr().err
    assert run(["token", "keygen", "--out-dir", str(tmp_path), "--force"]) == 0


def test_keygen_writes_nothing_when_any_of_its_files_exists(tmp_path: Path) -> None:
    """A new private key beside the old public key and JWKS would issue tokens nothing verifies."""
    assert run(["token", "keygen", "--out-dir", str(tmp_path)]) == 0
    (tmp_path / "private.pem").unlink()
    public_before = (tmp_path / "public.pem").read_bytes()
    assert run(["token", "keygen", "--out-dir", str(tmp_path)]) == 1
    assert not (tmp_path / "private.pem").exists()
    assert (tmp_path / "public.pem").read_bytes() == public_before


async def test_issue_signs_with_an_hmac_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "x" * 40
    monkeypatch.setenv("MY_SECRET", secret)
    argv = ["token", "issue", "--secret-env", "MY_SECRET", "--sub", "bob", "--iss", ISSUER, "--aud", AUDIENCE]
    assert run(argv) == 0
    token = capsys.readouterr().out.strip()
    verifier = TokenVerifier(make_config([{"secret": secret, "algorithms": ["HS256"]}]))
    assert (await verifier.verify(token)).user == "bob"


@pytest.mark.parametrize("ttl", ["0s", "forever", "400d"])
def test_issue_refuses_a_bad_ttl(tmp_path: Path, ttl: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["token", "keygen", "--out-dir", str(tmp_path)]) == 0
    assert run([*issue_argv(tmp_path / "private.pem"), "--sub", "a", "--ttl", ttl]) == 1
    assert "--ttl" in capsys.readouterr().err


def test_issue_explains_an_unreadable_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*issue_argv(tmp_path / "missing.pem"), "--sub", "a"]) == 1
    assert "cannot read --key" in capsys.readouterr().err
