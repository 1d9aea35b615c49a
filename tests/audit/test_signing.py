"""The shared Ed25519 key helper."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mcp_guard.signing import (
    SigningKeyError,
    load_or_create_signing_key,
    load_public_key,
    public_key_pem,
    sign,
    verify_signature,
)


def test_a_new_key_is_created_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "new" / "keys" / "k.pem"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    again = load_or_create_signing_key(path)
    assert public_key_pem(again) == public_key_pem(key)


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    load_or_create_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_or_create_signing_key(path)


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        load_or_create_signing_key(path)


def test_signatures_verify_only_for_the_signed_data_and_key(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path / "a.pem")
    other = load_or_create_signing_key(tmp_path / "b.pem")
    sig = sign(key, b"data")
    assert verify_signature(public_key_pem(key), b"data", sig)
    assert verify_signature(key.public_key(), b"data", sig)
    assert not verify_signature(key, b"Data", sig)
    assert not verify_signature(other, b"data", sig)
    assert not verify_signature(key, b"data", "not base64!")


def test_a_public_key_loads_from_a_public_or_a_private_pem(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path / "k.pem")
    pub = tmp_path / "k.pub"
    pub.write_text(public_key_pem(key))
    assert public_key_pem(load_public_key(pub)) == public_key_pem(key)
    assert public_key_pem(load_public_key(tmp_path / "k.pem")) == public_key_pem(key)
    with pytest.raises(SigningKeyError, match="does not exist"):
        load_public_key(tmp_path / "missing.pem")
