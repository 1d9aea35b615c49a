"""The hash chain and the signed checkpoints: what is hashed and what is signed.

``hash = SHA-256(canonical_json({"id", "kind", "prev_hash", "record", "seq", "time"}))``
where ``record`` is stored as its own canonical JSON text, so the entry's canonical
encoding is assembled by concatenation (JCS is compositional) without re-parsing
the record: that is what makes verifying a million entries fast.
"""

from __future__ import annotations

import hashlib
import json.encoder
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_guard.audit.canonical import canonical_bytes
from mcp_guard.audit.models import Checkpoint
from mcp_guard.signing import PublicKeyLike, key_id, sign, verify_signature

_enc: Callable[[str], str] = json.encoder.encode_basestring
_sha256 = hashlib.sha256

CHECKPOINT_TYPE = "mcp-guard.audit.checkpoint/v1"


def entry_bytes(  # noqa: PLR0917 - the hot path of verify: positional on purpose
    seq: int, id_: str, time: str, kind: str, record_json: str, prev_hash: str
) -> bytes:
    """The canonical JSON encoding of an entry (``record_json`` is the record's canonical text)."""
    return (
        f'{{"id":{_enc(id_)},"kind":{_enc(kind)},"prev_hash":{_enc(prev_hash)},'
        f'"record":{record_json},"seq":{seq},"time":{_enc(time)}}}'
    ).encode("utf-8", "surrogatepass")


def entry_hash(  # noqa: PLR0917 - the hot path of verify: positional on purpose
    seq: int, id_: str, time: str, kind: str, record_json: str, prev_hash: str
) -> str:
    """SHA-256 (lower-case hex) of :func:`entry_bytes`."""
    return _sha256(entry_bytes(seq, id_, time, kind, record_json, prev_hash)).hexdigest()


def checkpoint_payload(seq: int, head_hash: str, time: str, first_seq: int, kid: str) -> bytes:
    """The bytes a checkpoint signature covers: canonical JSON of its fields plus a type tag."""
    return canonical_bytes(
        {
            "first_seq": first_seq,
            "hash": head_hash,
            "key_id": kid,
            "seq": seq,
            "time": time,
            "type": CHECKPOINT_TYPE,
        }
    )


def make_checkpoint(
    key: Ed25519PrivateKey, seq: int, head_hash: str, time: str, first_seq: int
) -> Checkpoint:
    """A checkpoint of entry ``seq`` (hash ``head_hash``) signed with ``key``."""
    kid = key_id(key)
    signature = sign(key, checkpoint_payload(seq, head_hash, time, first_seq, kid))
    return Checkpoint(
        seq=seq, hash=head_hash, time=time, first_seq=first_seq, key_id=kid, signature=signature
    )


def checkpoint_valid(public_key: PublicKeyLike, cp: Checkpoint) -> bool:
    """Whether ``cp``'s signature verifies with ``public_key``.

    Raises:
        mcp_guard.signing.SigningKeyError: ``public_key`` is malformed PEM text.
    """
    payload = checkpoint_payload(cp.seq, cp.hash, cp.time, cp.first_seq, cp.key_id)
    return verify_signature(public_key, payload, cp.signature)
