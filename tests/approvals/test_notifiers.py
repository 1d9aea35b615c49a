"""Notifiers: the request is persisted first, deliveries are retried with backoff until they land."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_guard.approvals import (
    ApprovalConfig,
    ApprovalRequest,
    ApprovalService,
    ApprovalState,
    DeliveryStatus,
)
from mcp_guard.approvals.notifiers import slack_message, teams_card, webhook_body
from tests.approvals.helpers import BOB as BOB_APPROVER
from tests.approvals.helpers import (
    FakeClock,
    closed_port,
    make_config,
    make_context,
    serve,
    write_locked,
)
from tests.harness import logged_errors

pytestmark = pytest.mark.anyio

WEBHOOK_SECRET = "whsec-0123456789abcdef"


class Receiver:
    """A webhook receiver that fails ``failures`` times with 500, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.accepted = anyio.Event()

    async def hook(self, request: Request) -> JSONResponse:
        self.received.append((dict(request.headers), await request.body()))
        if len(self.received) <= self.failures:
            return JSONResponse({"error": "down"}, status_code=500)
        self.accepted.set()
        return JSONResponse({"ok": True})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


class InstantSleep:
    """Injected retry sleep: records each backoff and returns at once, advancing the fake clock."""

    def __init__(self, clock: FakeClock, block_after: int | None = None) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.block_after = block_after
        self.blocked = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.block_after is not None and len(self.delays) >= self.block_after:
            self.blocked.set()
            await self.release.wait()  # parked until the test releases it or the service closes
        self.clock.advance(seconds)
        await anyio.lowlevel.checkpoint()


def webhook_config(tmp_path: Path, url: str) -> ApprovalConfig:
    return make_config(tmp_path, channels={"ops": {"type": "webhook", "url": url, "secret": WEBHOOK_SECRET}})


async def test_a_failing_webhook_is_retried_with_backoff_until_delivered_while_the_request_stays_pending(
    tmp_path: Path, clock: FakeClock
) -> None:
    receiver = Receiver(failures=2)
    sleep = InstantSleep(clock)
    outcomes: list[DeliveryStatus] = []
    delivered = anyio.Event()

    def observe(status: DeliveryStatus) -> None:
        outcomes.append(status)
        if status.state == "delivered":
            delivered.set()

    with anyio.fail_after(10):
        async with serve(receiver.app()) as base:
            config = webhook_config(tmp_path, f"{base}/hook")
            async with ApprovalService.open(
                config, None, clock=clock, sleep=sleep, on_delivery=observe
            ) as approvals:
                req = await approvals.create(make_context())
                await delivered.wait()
                assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]
                [status] = await approvals.deliveries(req.id)
    assert (status.state, status.attempts, status.last_error) == ("delivered", 3, None)
    assert [o.state for o in outcomes] == ["pending", "pending", "delivered"]
    assert "answered 500" in (outcomes[0].last_error or "")
    assert sleep.delays == [2.0, 4.0]
    assert len(receiver.received) == 3


async def test_a_webhook_on_a_closed_port_keeps_the_request_and_records_each_failure(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = webhook_config(tmp_path, f"http://127.0.0.1:{closed_port()}/hook")
    sleep = InstantSleep(clock, block_after=4)
    with anyio.fail_after(10):
        async with ApprovalService.open(config, None, clock=clock, sleep=sleep) as approvals:
            req = await approvals.create(make_context())
            await sleep.blocked.wait()
            [status] = await approvals.deliveries(req.id)
            assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]
    assert status.state == "pending" and status.attempts == 4
    assert status.last_error is not None and "ConnectError" in status.last_error
    assert sleep.delays == [2.0, 4.0, 8.0, 16.0]


async def test_an_undelivered_notification_is_resumed_after_a_restart(
    tmp_path: Path, clock: FakeClock
) -> None:
    receiver = Receiver(failures=0)
    parked = InstantSleep(clock, block_after=1)
    with anyio.fail_after(10):
        down = webhook_config(tmp_path, f"http://127.0.0.1:{closed_port()}/hook")
        async with ApprovalService.open(down, None, clock=clock, sleep=parked) as approvals:
            req = await approvals.create(make_context(mode="defer"))
            await parked.blocked.wait()  # first attempt failed; the gateway stops here
        async with serve(receiver.app()) as base:
            up = webhook_config(tmp_path, f"{base}/hook")  # same channel name, receiver now reachable
            delivered = anyio.Event()

            def observe(status: DeliveryStatus) -> None:
                if status.state == "delivered":
                    delivered.set()

            async with ApprovalService.open(up, None, clock=clock, on_delivery=observe) as approvals:
                await delivered.wait()
                [status] = await approvals.deliveries(req.id)
    assert json.loads(receiver.received[0][1])["approval"]["id"] == req.id
    assert (status.state, status.attempts) == ("delivered", 2)


class HeldReceiver(Receiver):
    """A webhook receiver that fails its first request with 500, answering it only once
    ``answer`` is set (``asked`` is set when it arrives), then accepts."""

    def __init__(self) -> None:
        super().__init__(failures=1)
        self.asked = anyio.Event()
        self.answer = anyio.Event()

    async def hook(self, request: Request) -> JSONResponse:
        if not self.received:
            self.asked.set()
            await self.answer.wait()
        return await super().hook(request)


async def test_a_delivery_outcome_the_locked_database_cannot_take_is_retried_and_the_service_keeps_serving(
    tmp_path: Path, clock: FakeClock
) -> None:
    receiver = HeldReceiver()
    sleep = InstantSleep(clock, block_after=1)
    delivered = anyio.Event()

    def observe(status: DeliveryStatus) -> None:
        if status.state == "delivered":
            delivered.set()

    with logged_errors("mcp_guard.approvals.delivery") as errors, anyio.fail_after(10):
        async with serve(receiver.app()) as base:
            config = make_config(
                tmp_path,
                busy_timeout_ms=50,
                channels={"ops": {"type": "webhook", "url": f"{base}/hook", "secret": WEBHOOK_SECRET}},
            )
            async with ApprovalService.open(
                config, None, clock=clock, sleep=sleep, on_delivery=observe
            ) as approvals:
                req = await approvals.create(make_context(mode="defer"))
                await receiver.asked.wait()
                with write_locked(config.path):  # another writer holds the database meanwhile
                    receiver.answer.set()  # the attempt fails; recording that meets the lock
                    await sleep.blocked.wait()  # the service waits to retry
                sleep.release.set()
                await delivered.wait()
                assert (await approvals.get(req.id)).state is ApprovalState.PENDING  # type: ignore[union-attr]
                [status] = await approvals.deliveries(req.id)
    assert (status.state, status.attempts) == ("delivered", 2)
    assert len(receiver.received) == 2
    [error] = errors.messages
    assert f"approval {req.id}: channel 'ops': cannot record its delivery state" in error
    assert "database is locked" in error


async def test_delivery_stops_once_the_request_is_decided(tmp_path: Path, clock: FakeClock) -> None:
    config = webhook_config(tmp_path, f"http://127.0.0.1:{closed_port()}/hook")
    sleep = InstantSleep(clock, block_after=1)
    stopped = anyio.Event()
    final: list[DeliveryStatus] = []

    def observe(status: DeliveryStatus) -> None:
        if status.state == "gave_up":
            final.append(status)
            stopped.set()

    with anyio.fail_after(10):
        async with ApprovalService.open(
            config, None, clock=clock, sleep=sleep, on_delivery=observe
        ) as approvals:
            req = await approvals.create(make_context(mode="defer"))
            await sleep.blocked.wait()
            await approvals.decide(req.id, BOB_APPROVER, True, "")
            sleep.release.set()
            await stopped.wait()
    assert final[0].last_error == "the request is no longer pending"
    assert final[0].attempts == 1


async def test_the_webhook_body_is_signed_with_hmac_sha256_and_carries_the_context(
    tmp_path: Path, clock: FakeClock
) -> None:
    receiver = Receiver(failures=0)
    with anyio.fail_after(10):
        async with (
            serve(receiver.app()) as base,
            ApprovalService.open(webhook_config(tmp_path, f"{base}/hook"), None, clock=clock) as approvals,
        ):
            req = await approvals.create(make_context())
            await receiver.accepted.wait()
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-mcp-guard-signature"] == expected
    assert headers["x-mcp-guard-timestamp"] == str(int(clock().timestamp()))
    assert headers["x-mcp-guard-event"] == "approval.requested"
    data = json.loads(body)
    assert data["sent_at"] == int(clock().timestamp())
    assert data["approval"]["id"] == req.id
    assert data["approval"]["context"]["tool"] == "github__delete_repo"
    assert data["links"]["approve"].endswith(f"/{req.id}/approve")


async def test_the_request_is_persisted_before_any_notifier_runs(
    config: ApprovalConfig, clock: FakeClock
) -> None:
    seen: list[ApprovalState | None] = []
    done = anyio.Event()

    class Probe:
        name = "probe"

        async def send(self, request: ApprovalRequest, client: httpx2.AsyncClient) -> None:
            stored = await approvals.get(request.id)
            seen.append(None if stored is None else stored.state)
            done.set()

    with anyio.fail_after(5):
        async with ApprovalService.open(config, None, clock=clock, notifiers=[Probe()]) as approvals:
            await approvals.create(make_context())
            await done.wait()
    assert seen == [ApprovalState.PENDING]


def sample() -> ApprovalRequest:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    return ApprovalRequest(
        id="a1b2",
        state=ApprovalState.PENDING,
        created_at=now,
        expires_at=now + timedelta(minutes=15),
        context=make_context(arguments={"owner": "acme", "repo": "payments-api", "body": "x" * 500}),
    )


def texts(blocks: Any) -> str:
    return json.dumps(blocks)


def test_the_slack_message_shows_who_what_findings_risk_rules_and_buttons() -> None:
    msg = slack_message(sample(), "https://gw.example.test/admin/approvals")
    blocks = msg["blocks"]
    assert blocks[0]["type"] == "header" and "github__delete_repo" in blocks[0]["text"]["text"]
    everything = texts(blocks)
    for expected in (
        "alice (agent claude-desktop)",
        "72/100",
        "destructive-needs-approval",
        "payments-api",
        "secret (high) at token",
        "deleting a repository needs an approval",
    ):
        assert expected in everything
    assert "x" * 200 not in everything  # long arguments are shortened
    [actions] = [b for b in blocks if b["type"] == "actions"]
    by_text = {e["text"]["text"]: e for e in actions["elements"]}
    assert by_text["Approve"]["value"] == "a1b2" and by_text["Approve"]["action_id"] == "mcp_guard_approve"
    assert by_text["Reject"]["action_id"] == "mcp_guard_reject"
    assert by_text["Open"]["url"] == "https://gw.example.test/admin/approvals/a1b2"
    assert msg["text"].startswith("Approval needed")


def test_the_teams_message_is_one_adaptive_card_with_facts_and_a_review_link() -> None:
    msg = teams_card(sample(), "https://gw.example.test/admin/approvals")
    assert msg["type"] == "message"
    [attachment] = msg["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Who"] == "alice (agent claude-desktop)" and facts["Tool"] == "github__delete_repo"
    assert facts["Risk"] == "72/100" and facts["Approval id"] == "a1b2"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Review", "url": "https://gw.example.test/admin/approvals/a1b2"}
    ]
    assert all(b["type"] in ("TextBlock", "FactSet") for b in card["body"])


def test_the_webhook_body_has_no_links_without_a_public_url() -> None:
    assert webhook_body(sample(), None, 0)["links"] == {}
