"""The admin HTTP API behind the real bearer middleware: list, show, approve, reject, errors."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from mcp_guard.approvals import ApprovalConfig, ApprovalService, ApprovalState, approval_routes
from mcp_guard.approvals.routes import MAX_BODY
from mcp_guard.identity import AuthConfig, BearerAuthMiddleware, TokenVerifier
from tests.approvals.helpers import (
    BOB,
    CountingBody,
    FakeClock,
    RecordingAudit,
    UnavailableAudit,
    make_config,
    make_context,
    serve,
)

pytestmark = pytest.mark.anyio

ISSUER = "https://idp.example.test/"
AUDIENCE = "https://gw.example.test/mcp"
SECRET = "approvals-test-secret-long-enough-for-hs256"


def token(sub: str, roles: list[str], groups: list[str] | None = None) -> dict[str, str]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "roles": roles,
        "groups": groups or [],
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


ALICE_H = token("alice", ["engineer"])
BOB_H = token("bob", ["sre"])
CAROL_H = token("carol", ["engineer"])
ADMIN_H = token("dana", ["approvals-admin"])


def admin_app(service: ApprovalService) -> Starlette:
    verifier = TokenVerifier(
        AuthConfig.model_validate(
            {"issuer": ISSUER, "audience": AUDIENCE, "keys": [{"secret": SECRET, "algorithms": ["HS256"]}]}
        )
    )
    return Starlette(
        routes=approval_routes(service, prefix="/admin/approvals"),
        middleware=[Middleware(BearerAuthMiddleware, verifier=verifier)],
    )


@asynccontextmanager
async def admin_client(service: ApprovalService) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=admin_app(service))
    async with httpx2.AsyncClient(transport=transport, base_url="https://gw.example.test") as client:
        yield client


@asynccontextmanager
async def admin_api(
    config: ApprovalConfig, clock: FakeClock
) -> AsyncIterator[tuple[ApprovalService, httpx2.AsyncClient]]:
    """An approvals service without an audit log, and a client of its admin API."""
    async with (
        ApprovalService.open(config, None, clock=clock) as approvals,
        admin_client(approvals) as client,
    ):
        yield approvals, client


async def test_an_approval_through_the_admin_api_served_by_uvicorn_releases_a_held_call(
    config: ApprovalConfig, clock: FakeClock, audit: RecordingAudit
) -> None:
    async with ApprovalService.open(config, audit, clock=clock) as approvals:
        req = await approvals.create(make_context())
        outcome = None

        async def waiter() -> None:
            nonlocal outcome
            outcome = await approvals.wait(req.id, timeout_s=30)

        with anyio.fail_after(10):
            async with serve(admin_app(approvals)) as base, httpx2.AsyncClient(base_url=base) as client:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiter)
                    r = await client.post(
                        f"/admin/approvals/{req.id}/approve",
                        json={"reason": "change ticket CHG-42"},
                        headers=BOB_H,
                    )
                assert r.status_code == 200, r.text
                assert r.json()["state"] == "approved"
                assert r.json()["signature_valid"] is True
        assert outcome is not None and outcome.state is ApprovalState.APPROVED
        assert outcome.decision is not None and outcome.decision.reason == "change ticket CHG-42"
        assert outcome.decision.via == "api"


async def test_an_approver_sees_the_context_package_and_the_list_filters_by_state(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with admin_api(config, clock) as (approvals, client):
        first = await approvals.create(make_context())
        second = await approvals.create(make_context(tool="github__force_push"))
        await approvals.decide(second.id, BOB, False, "no")
        r = await client.get("/admin/approvals", params={"state": "pending"}, headers=BOB_H)
        assert r.status_code == 200
        assert [a["id"] for a in r.json()["approvals"]] == [first.id]
        r = await client.get(f"/admin/approvals/{first.id}", headers=BOB_H)
        body = r.json()
        ctx = body["context"]
        assert ctx["principal"]["user"] == "alice"
        assert ctx["tool"] == "github__delete_repo"
        assert ctx["arguments"] == {"owner": "acme", "repo": "payments-api"}
        assert ctx["findings"] and ctx["risk"] == 72.0 and ctx["rules"] == ["destructive-needs-approval"]
        assert body["links"]["approve"] == f"https://gw.example.test/admin/approvals/{first.id}/approve"
        assert body["deliveries"] == []
        r = await client.get("/admin/approvals", params={"state": "bogus"}, headers=BOB_H)
        assert r.status_code == 400


async def test_the_admin_api_answers_clear_json_errors(config: ApprovalConfig, clock: FakeClock) -> None:
    async with admin_api(config, clock) as (approvals, client):
        req = await approvals.create(make_context())
        r = await client.post("/admin/approvals/missing/approve", json={}, headers=BOB_H)
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
        r = await client.post(f"/admin/approvals/{req.id}/approve", json={}, headers=CAROL_H)
        assert (r.status_code, r.json()["error"]) == (404, "not_found")  # carol may not even see it
        r = await client.post(f"/admin/approvals/{req.id}/approve", json={}, headers=ADMIN_H)
        assert (r.status_code, r.json()["error"]) == (403, "not_an_approver")
        r = await client.post(f"/admin/approvals/{req.id}/approve", json={}, headers=ALICE_H)
        assert (r.status_code, r.json()["error"]) == (403, "self_approval")
        r = await client.post(f"/admin/approvals/{req.id}/reject", json={}, headers=BOB_H)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
        r = await client.post(f"/admin/approvals/{req.id}/reject", json={"reason": 3}, headers=BOB_H)
        assert r.status_code == 400
        r = await client.post(
            f"/admin/approvals/{req.id}/reject", json={"reason": "no", "x": 1}, headers=BOB_H
        )
        assert r.status_code == 400
        r = await client.post(f"/admin/approvals/{req.id}/reject", json={"reason": "no"}, headers=BOB_H)
        assert (r.status_code, r.json()["state"]) == (200, "rejected")
        r = await client.post(f"/admin/approvals/{req.id}/approve", json={}, headers=BOB_H)
        assert (r.status_code, r.json()["error"]) == (409, "not_pending")
        r = await client.get("/admin/approvals")
        assert r.status_code == 401


async def test_the_requester_and_admins_can_read_a_request_but_others_cannot(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with admin_api(config, clock) as (approvals, client):
        req = await approvals.create(make_context())
        for headers, expected in ((ALICE_H, 200), (ADMIN_H, 200), (BOB_H, 200), (CAROL_H, 404)):
            assert (await client.get(f"/admin/approvals/{req.id}", headers=headers)).status_code == expected
        listed = (await client.get("/admin/approvals", headers=CAROL_H)).json()["approvals"]
        assert listed == []


async def test_the_routes_also_work_under_a_mount(config: ApprovalConfig, clock: FakeClock) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals:
        req = await approvals.create(make_context())
        app = Starlette(routes=[Mount("/admin/approvals", routes=approval_routes(approvals))])

        async def with_principal(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("state", {})["principal"] = BOB
            await app(scope, receive, send)

        transport = httpx2.ASGITransport(app=with_principal)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/admin/approvals/")).json()["approvals"][0]["id"] == req.id
            assert (await client.get(f"/admin/approvals/{req.id}")).status_code == 200


async def test_a_huge_decision_body_is_refused_without_being_read_into_memory(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with admin_api(config, clock) as (approvals, client):
        req = await approvals.create(make_context())
        body = CountingBody(total=256 * 1024 * 1024)
        with anyio.fail_after(10):
            r = await client.post(f"/admin/approvals/{req.id}/approve", content=body, headers=BOB_H)
        assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
        assert body.sent <= MAX_BODY + 2 * body.chunk
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


async def test_a_locked_approvals_database_answers_503_json_and_changes_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = make_config(tmp_path, busy_timeout_ms=0)
    async with admin_api(config, clock) as (approvals, client):
        req = await approvals.create(make_context())
        other = sqlite3.connect(config.path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            r = await client.post(f"/admin/approvals/{req.id}/approve", json={}, headers=BOB_H)
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "unavailable" and "locked" in r.json()["message"]
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


async def test_an_unavailable_audit_log_answers_503_json_not_a_bare_500(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with (
        ApprovalService.open(config, UnavailableAudit(working=2), clock=clock) as approvals,
        admin_client(approvals) as client,
    ):
        first = await approvals.create(make_context())
        await approvals.create(make_context(tool="github__force_push"))
        clock.advance(3600)  # the next read expires them, and that cannot be audited
        r = await client.get(f"/admin/approvals/{first.id}", headers=BOB_H)
        assert (r.status_code, r.json()["error"]) == (503, "unavailable")
        assert "audit log unavailable: disk full" in r.json()["message"]
        r = await client.get("/admin/approvals", headers=BOB_H)
        assert (r.status_code, r.json()["error"]) == (503, "unavailable")


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        ("ok\x1b[2J\x1b[31mAPPROVED BY SECURITY", "U+001B"),
        ("fine \u202eevil\u202c", "U+202E"),
        ("nul\x00byte", "U+0000"),
    ],
)
async def test_a_reason_with_control_or_bidi_characters_is_refused_naming_the_character(
    config: ApprovalConfig, clock: FakeClock, reason: str, named: str
) -> None:
    async with admin_api(config, clock) as (approvals, client):
        req = await approvals.create(make_context())
        r = await client.post(f"/admin/approvals/{req.id}/approve", json={"reason": reason}, headers=BOB_H)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
        assert named in r.json()["message"]
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


async def test_a_rejection_whose_reason_is_only_invisible_characters_is_refused(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with admin_api(config, clock) as (approvals, client):
        req = await approvals.create(make_context())
        r = await client.post(
            f"/admin/approvals/{req.id}/reject", json={"reason": "\u200b\u2060 "}, headers=BOB_H
        )
        assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
        r = await client.post(
            f"/admin/approvals/{req.id}/reject",
            json={"reason": "no:\n see CHG-42\t(fraud) 🙅‍♀️"},
            headers=BOB_H,
        )
        assert (r.status_code, r.json()["state"]) == (200, "rejected")


async def test_a_decision_body_that_is_not_json_is_refused_with_415(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with admin_api(config, clock) as (approvals, client):
        req = await approvals.create(make_context())
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {**BOB_H, **({"Content-Type": content_type} if content_type else {})}
            r = await client.post(
                f"/admin/approvals/{req.id}/approve", content=b'{"reason": "x"}', headers=headers
            )
            assert (r.status_code, r.json()["error"]) == (415, "unsupported_media_type"), content_type
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]
        r = await client.post(
            f"/admin/approvals/{req.id}/approve",
            content=b'{"reason": "x"}',
            headers={**BOB_H, "Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 200, r.text
