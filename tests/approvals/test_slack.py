"""Slack interactivity: signed button clicks decide requests; forged or stale ones are refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import urlencode

import anyio
import httpx2
import pytest
from starlette.applications import Starlette

from mcp_guard.approvals import (
    ApprovalConfig,
    ApprovalService,
    ApprovalState,
    SlackInteractivity,
    SlackSignatureError,
    slack_routes,
    verify_slack_signature,
)
from mcp_guard.approvals.notifiers.slack import APPROVE_ACTION, REJECT_ACTION
from mcp_guard.approvals.slack import MAX_BODY, slack_signature
from tests.approvals.helpers import ALICE, CountingBody, FakeClock, make_config, make_context

pytestmark = pytest.mark.anyio

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_772_355_600.0
SLACK = SlackInteractivity.model_validate(
    {
        "signing_secret": SECRET,
        "users": {
            "U0BOB": {"user": "bob", "roles": ["sre"]},
            "U0ALICE": {"user": "alice", "roles": ["sre"]},
            "U0GUS": {"user": "gus", "roles": ["sre"], "tenant": "globex"},
            "U0ANN": {"user": "ann", "roles": ["sre"], "tenant": "acme"},
        },
    }
)


def test_a_correctly_signed_fresh_request_verifies() -> None:
    body = b"payload=%7B%7D"
    ts = str(int(NOW))
    verify_slack_signature(SECRET, ts, slack_signature(SECRET, ts, body), body, now=NOW)


def test_the_signature_matches_slacks_documented_example() -> None:
    # https://api.slack.com/authentication/verifying-requests-from-slack: the docs' secret, body and signature
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert slack_signature(SECRET, "1531420618", body) == expected


@pytest.mark.parametrize(
    ("timestamp", "signature", "why"),
    [
        (str(int(NOW)), "v0=" + "0" * 64, "does not match"),
        (str(int(NOW)), None, "missing"),
        (str(int(NOW) - 301), "sign", "stale"),
        (str(int(NOW) + 301), "sign", "stale"),
        ("yesterday", "sign", "not an integer"),
    ],
)
def test_wrong_missing_or_stale_signatures_are_refused(
    timestamp: str, signature: str | None, why: str
) -> None:
    body = b"payload=%7B%7D"
    if signature == "sign":
        signature = slack_signature(SECRET, timestamp, body)
    with pytest.raises(SlackSignatureError, match=why):
        verify_slack_signature(SECRET, timestamp, signature, body, now=NOW)


def click(request_id: str, slack_user: str, action: str) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": slack_user, "username": slack_user.lower()},
        "actions": [{"action_id": action, "value": request_id, "type": "button"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, ts: float = NOW, secret: str = SECRET) -> dict[str, str]:
    t = str(int(ts))
    return {
        "X-Slack-Request-Timestamp": t,
        "X-Slack-Signature": slack_signature(secret, t, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def client_for(service: ApprovalService) -> httpx2.AsyncClient:
    app = Starlette(routes=slack_routes(service, SLACK, clock=lambda: NOW))
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://gw.example.test")


async def test_a_mapped_slack_user_approves_by_clicking_the_button(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals, client_for(approvals) as client:
        req = await approvals.create(make_context())
        body = click(req.id, "U0BOB", APPROVE_ACTION)
        r = await client.post("/slack/interactivity", content=body, headers=signed(body))
        assert r.status_code == 200 and r.json()["ok"] is True
        done = await approvals.get(req.id)
        assert done is not None and done.state is ApprovalState.APPROVED
        assert done.decision is not None and done.decision.via == "slack"
        assert done.decision.approver_user == "bob" and "U0BOB" in done.decision.reason


async def test_slack_clicks_get_the_same_authorisation_as_any_approver(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals, client_for(approvals) as client:
        req = await approvals.create(make_context())
        for user in ("U0ALICE", "U0STRANGER"):  # the requester herself; an unmapped Slack user
            body = click(req.id, user, REJECT_ACTION)
            r = await client.post("/slack/interactivity", content=body, headers=signed(body))
            assert r.status_code == 200 and r.json()["ok"] is False
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


async def test_a_slack_approver_of_another_tenant_cannot_decide_and_one_of_the_same_tenant_can(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    acme_alice = ALICE.model_copy(update={"tenant": "acme"})
    async with ApprovalService.open(config, None, clock=clock) as approvals, client_for(approvals) as client:
        req = await approvals.create(make_context(principal=acme_alice))
        for user, decided in (("U0GUS", False), ("U0ANN", True)):
            body = click(req.id, user, APPROVE_ACTION)
            r = await client.post("/slack/interactivity", content=body, headers=signed(body))
            assert r.status_code == 200 and r.json()["ok"] is decided, user
        done = await approvals.get(req.id)
        assert done is not None and done.decision is not None and done.decision.approver_user == "ann"


async def test_forged_and_replayed_slack_requests_change_nothing(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals, client_for(approvals) as client:
        req = await approvals.create(make_context())
        body = click(req.id, "U0BOB", APPROVE_ACTION)
        for headers in (signed(body, secret="not-the-secret"), signed(body, ts=NOW - 3600), {}):
            r = await client.post("/slack/interactivity", content=body, headers=headers)
            assert (r.status_code, r.json()["error"]) == (401, "invalid_signature")
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]


def test_slack_interactivity_refuses_unknown_config_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        SlackInteractivity.model_validate({"signing_secret": SECRET, "user": {}})


async def test_an_unsigned_huge_body_is_refused_without_being_read_into_memory(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals, client_for(approvals) as client:
        body = CountingBody(total=256 * 1024 * 1024)
        with anyio.fail_after(10):
            r = await client.post("/slack/interactivity", content=body, headers=signed(b""))
        assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
        assert body.sent <= MAX_BODY + 2 * body.chunk


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    async with ApprovalService.open(config, None, clock=clock) as approvals, client_for(approvals) as client:
        body = CountingBody(total=MAX_BODY + 4096)
        headers = {**signed(b""), "Content-Length": str(body.total)}
        r = await client.post("/slack/interactivity", content=body, headers=headers)
        assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
        assert body.sent <= body.chunk


async def test_a_click_while_the_approvals_database_is_locked_answers_503_and_changes_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = make_config(tmp_path, busy_timeout_ms=0)
    async with ApprovalService.open(config, None, clock=clock) as approvals, client_for(approvals) as client:
        req = await approvals.create(make_context())
        body = click(req.id, "U0BOB", APPROVE_ACTION)
        other = sqlite3.connect(config.path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            r = await client.post("/slack/interactivity", content=body, headers=signed(body))
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert (r.status_code, r.json()["error"]) == (503, "unavailable"), r.text
        assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]
