"""Ed25519 signing keys: load or create, sign, verify.

Shared by the audit log (signed checkpoints) and the approvals feature. Keys are
PKCS#8 PEM files without a passphrase, protected by file permissions: a key file
is created with mode 0600 (its directory, when created here, with 0700), and a key
file that group or others can read is refused rather than used.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mcp_guard.errors import GuardError

PublicKeyLike = Ed25519PublicKey | Ed25519PrivateKey | str | bytes


class SigningKeyError(GuardError):
    """A signing key file is missing, unreadable, malformed, or too widely readable."""


def load_or_create_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key stored at ``path``, generated there on first use.

    A new key is written atomically (never half-written, never overwriting a key
    another process created at the same moment) with mode 0600; missing parent
    directories are created with mode 0700.

    Raises:
        SigningKeyError: the file is readable by group/others, is not an
            unencrypted Ed25519 PEM private key, or cannot be read or created.
    """
    p = Path(path)
    if not p.exists():
        _create_key_file(p)
    return load_signing_key(p)


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key stored at ``path`` (never creates one).

    Raises:
        SigningKeyError: the file is missing, readable by group/others, or not an
            unencrypted Ed25519 PEM private key.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise SigningKeyError(f"signing key {p} does not exist") from None
    except OSError as exc:
        raise SigningKeyError(f"signing key {p} cannot be read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(
            f"signing key {p} is accessible by group/others (mode {stat.S_IMODE(mode):04o}); "
            f"refusing to use it. Restrict it with: chmod 600 {p}"
        )
    data = _read(p)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"signing key {p} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {p} is not an Ed25519 key ({type(key).__name__})")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The Ed25519 public key in ``path``: a public key PEM, or a private key PEM.

    A private key file is subject to the same permission check as
    :func:`load_signing_key`.

    Raises:
        SigningKeyError: the file is missing or does not hold an Ed25519 key.
    """
    p = Path(path)
    data = _read(p)
    if b"PRIVATE KEY" in data:
        return load_signing_key(p).public_key()
    return _parse_public(data, str(p))


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The SubjectPublicKeyInfo PEM text of ``key`` (or of a private key's public half)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id(key: PublicKeyLike) -> str:
    """A short stable fingerprint of a public key: the first 16 hex digits of SHA-256 of its raw bytes.

    Raises:
        SigningKeyError: ``key`` is PEM text that does not hold an Ed25519 public key.
    """
    raw = _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    """The Ed25519 signature of ``data``, standard base64-encoded."""
    return base64.b64encode(key.sign(data)).decode("ascii")


def verify_signature(public_pem_or_key: PublicKeyLike, data: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is a valid Ed25519 signature of ``data``.

    A malformed signature (bad base64, wrong length) is simply invalid.

    Raises:
        SigningKeyError: ``public_pem_or_key`` is PEM text that does not hold an
            Ed25519 public key.
    """
    public = _public(public_pem_or_key)
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public.verify(raw, data)
    except InvalidSignature:
        return False
    return True


def _public(key: PublicKeyLike) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, Ed25519PublicKey):
        return key
    data = key.encode("ascii") if isinstance(key, str) else key
    return _parse_public(data, "public key")


def _parse_public(data: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{where} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{where} is not an Ed25519 key ({type(key).__name__})")
    return key


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"key file {p} does not exist") from None
    except OSError as exc:
        raise SigningKeyError(f"key file {p} cannot be read: {exc.strerror}") from None


def _create_key_file(p: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        _make_private_dirs(p.parent)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".key-", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # a concurrent creator won: use its key
                os.link(tmp, p)  # atomic create-if-absent
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise SigningKeyError(f"cannot create signing key {p}: {exc.strerror or exc}") from None


def _make_private_dirs(directory: Path) -> None:
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        try:
            m.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(m, 0o700)  # mkdir's mode is filtered by the umask
