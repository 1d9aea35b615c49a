"""Every decision is signed with the gateway's Ed25519 key; anyone with the public key can check it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_guard.approvals import (
    ApprovalConfig,
    ApprovalRequest,
    ApprovalService,
    decision_payload,
    verify_decision,
)
from mcp_guard.approvals.store import ApprovalStore
from mcp_guard.audit import AuditConfig, SqliteAuditLog, verify
from mcp_guard.audit.canonical import canonical_json
from mcp_guard.signing import load_public_key, load_signing_key, public_key_pem, verify_signature
from tests.approvals.helpers import BOB, FakeClock, make_context

pytestmark = pytest.mark.anyio


async def decided(config: ApprovalConfig, clock: FakeClock) -> tuple[ApprovalRequest, str]:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context())
        done = await approvals.decide(req.id, BOB, False, "outside the change window")
        return done, approvals.public_key_pem


async def test_a_decision_verifies_with_the_gateway_public_key(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    request, public_pem = await decided(config, clock)
    assert verify_decision(request, public_pem)
    d = request.decision
    assert d is not None
    assert json.loads(d.payload) == {
        "approval_id": request.id,
        "call_digest": request.call_digest,
        "decision": "reject",
        "approver": {"user": "bob", "agent": None},
        "reason": "outside the change window",
        "time": "2026-03-01T09:00:00.000000Z",
        "via": "api",
    }
    assert d.payload == canonical_json(json.loads(d.payload))


async def test_a_tampered_reason_no_longer_verifies(config: ApprovalConfig, clock: FakeClock) -> None:
    request, public_pem = await decided(config, clock)
    d = request.decision
    assert d is not None
    edited_field = request.model_copy(
        update={"decision": d.model_copy(update={"reason": "approved by CISO"})}
    )
    assert not verify_decision(edited_field, public_pem)
    forged_payload = d.payload.replace("outside the change window", "approved by CISO")
    both = d.model_copy(update={"reason": "approved by CISO", "payload": forged_payload})
    assert not verify_decision(request.model_copy(update={"decision": both}), public_pem)
    flipped = request.model_copy(update={"decision": d.model_copy(update={"approve": True})})
    assert not verify_decision(flipped, public_pem)


async def test_a_decision_moved_to_another_request_does_not_verify(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    request, public_pem = await decided(config, clock)
    assert not verify_decision(request.model_copy(update={"id": "another"}), public_pem)


async def test_another_key_does_not_verify_and_undecided_requests_are_not_verified(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    request, public_pem = await decided(config, clock)
    assert not verify_decision(request, public_key_pem(Ed25519PrivateKey.generate()))
    assert not verify_decision(request.model_copy(update={"decision": None}), public_pem)


async def test_the_stored_decision_verifies_after_reading_the_file_back(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    request, _ = await decided(config, clock)
    async with ApprovalStore.open(config.path, create=False) as store:
        stored = await store.get(request.id)
    assert stored == request
    assert verify_decision(stored, load_signing_key(config.signing_key_path))


async def test_the_audit_log_holds_the_signed_decision_and_stays_verifiable(
    config: ApprovalConfig, clock: FakeClock, tmp_path: Path
) -> None:
    audit_config = AuditConfig(path=tmp_path / "audit.db", signing_key_path=tmp_path / "keys" / "audit.pem")
    async with (
        SqliteAuditLog.open(audit_config) as log,
        ApprovalService.open(config, log, clock=clock) as approvals,
    ):
        req = await approvals.create(make_context())
        done = await approvals.decide(req.id, BOB, True, "ok")
    assert verify(audit_config.path, load_public_key(audit_config.signing_key_path)).ok
    with sqlite3.connect(audit_config.path) as conn:
        rows = conn.execute("SELECT record FROM entries WHERE kind = 'approval' ORDER BY seq").fetchall()
    records = [json.loads(r[0]) for r in rows]
    assert [r["event"] for r in records] == ["created", "approved"]
    signed = records[1]
    stored_request = done.model_copy()
    assert signed["signed_payload"] == stored_request.decision.payload  # type: ignore[union-attr]
    assert verify_signature(approvals.public_key_pem, signed["signed_payload"].encode(), signed["signature"])
    d = done.decision
    assert d is not None
    assert decision_payload(
        approval_id=done.id,
        call_digest=done.call_digest,
        approve=True,
        approver_user="bob",
        approver_agent=None,
        reason="ok",
        decided_at=d.decided_at,
        via="api",
    ) == json.loads(d.payload)
