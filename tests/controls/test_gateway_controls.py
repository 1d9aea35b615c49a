"""The controls as the gateway applies them to real calls (behaviour upstream over stdio)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup
from mcp import ClientSession, types

from mcp_guard.approvals import Approvers
from mcp_guard.audit import AuditLog, AuditReceipt, AuditUnavailableError
from mcp_guard.audit.protocol import FailureHandler, RecordBuilder
from mcp_guard.config.settings import GatewaySettings
from mcp_guard.controls import BreakerState, Instant
from mcp_guard.gateway import Gateway
from mcp_guard.principal import LOCAL_PRINCIPAL, Principal
from tests.harness import behaviour_upstream, gateway_client, with_private_state

pytestmark = pytest.mark.anyio


def decision(result: object) -> dict[str, Any]:
    assert isinstance(result, types.CallToolResult) and result.meta is not None
    found: dict[str, Any] = result.meta["mcp-guard/decision"]
    return found


def settings(**controls: list[dict[str, Any]]) -> GatewaySettings:
    return GatewaySettings.model_validate({"controls": controls})


def signal_when_forwarded(gateway: Gateway, upstream: str) -> anyio.Event:
    """An event set when the gateway hands a call to ``upstream`` (the real call still runs)."""
    forwarded = anyio.Event()
    target = gateway.upstreams[upstream]
    real = target.call_tool

    async def call_tool(*args: Any, **kwargs: Any) -> types.CallToolResult:
        forwarded.set()
        return await real(*args, **kwargs)

    target.call_tool = call_tool  # type: ignore[method-assign]
    return forwarded


class HandClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.mono = 0.0

    def now(self) -> Instant:
        return Instant(self.mono, datetime(2026, 6, 15, 12, tzinfo=UTC))

    def monotonic(self) -> float:
        return self.mono


def hold_until_released(gateway: Gateway, upstream: str) -> dict[str, tuple[anyio.Event, anyio.Event]]:
    """Echo calls whose text is a key of the returned dict are held before reaching ``upstream``:
    the first event is set when one arrives, the real call runs once the test sets the second."""
    gates: dict[str, tuple[anyio.Event, anyio.Event]] = {}
    target = gateway.upstreams[upstream]
    real = target.call_tool

    async def call_tool(name: str, arguments: dict[str, Any], **kwargs: Any) -> types.CallToolResult:
        gate = gates.get(str(arguments.get("text")))
        if gate is not None:
            gate[0].set()
            await gate[1].wait()
        return await real(name, arguments, **kwargs)

    target.call_tool = call_tool  # type: ignore[method-assign]
    return gates


async def test_a_slow_call_admitted_before_the_breaker_opened_does_not_close_it_while_it_probes(
    tmp_path: Path,
) -> None:
    breaker = {
        "id": "beh-breaker",
        "upstreams": ["beh"],
        "consecutive_failures": 1,
        "count_tool_errors": True,
        "open_for": 30,
    }
    async with gateway_client(behaviour_upstream(tmp_path), settings(breakers=[breaker])) as (
        gateway,
        client,
    ):
        assert gateway.controls is not None
        clock = gateway.controls.clock = HandClock()
        gates = hold_until_released(gateway, "beh")
        gates["slow"] = (anyio.Event(), anyio.Event())
        gates["probe"] = (anyio.Event(), anyio.Event())
        slow_answered = anyio.Event()

        async def slow_call() -> None:
            await client.call_tool("beh__echo", {"text": "slow"})
            slow_answered.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)  # admitted while the breaker is closed
                await gates["slow"][0].wait()
                await client.call_tool("beh__fail", {})  # opens the breaker
                clock.mono = 30.0
                tg.start_soon(client.call_tool, "beh__echo", {"text": "probe"})
                await gates["probe"][0].wait()
                gates["slow"][1].set()
                await slow_answered.wait()  # its success is recorded before the answer leaves
                while_probing = await client.call_tool("beh__echo", {"text": "unheld"})
                gates["probe"][1].set()
    assert decision(while_probing)["rules"] == ["beh-breaker"], decision(while_probing)["reason"]


async def test_a_call_its_client_cancels_is_not_counted_as_an_upstream_failure(tmp_path: Path) -> None:
    breaker = {"id": "beh-breaker", "upstreams": ["beh"], "consecutive_failures": 1, "open_for": 60}
    async with gateway_client(behaviour_upstream(tmp_path), settings(breakers=[breaker])) as (
        gateway,
        client,
    ):
        forwarded = signal_when_forwarded(gateway, "beh")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(gateway.call_tool, LOCAL_PRINCIPAL, "s-1", "beh__hang", {"tag": "gone"})
                await forwarded.wait()
                tg.cancel_scope.cancel()
            after = await client.call_tool("beh__echo", {"text": "x"})
    assert decision(after)["decision"] == "ALLOW", decision(after)["reason"]


async def test_a_call_a_full_concurrency_cap_refuses_is_not_charged_to_the_budget(tmp_path: Path) -> None:
    one_at_a_time = {"id": "beh-inflight", "upstreams": ["beh"], "max": 1}
    two_calls = {"id": "beh-daily", "upstreams": ["beh"], "period": "day", "max_calls": 2}
    upstreams = behaviour_upstream(tmp_path)
    async with gateway_client(upstreams, settings(concurrency=[one_at_a_time], budgets=[two_calls])) as (
        gateway,
        client,
    ):
        forwarded = signal_when_forwarded(gateway, "beh")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(gateway.call_tool, LOCAL_PRINCIPAL, "s-1", "beh__hang", {"tag": "held"})
                await forwarded.wait()
                refused = await client.call_tool("beh__echo", {"text": "while busy"})
                tg.cancel_scope.cancel()
            after = await client.call_tool("beh__echo", {"text": "x"})
    assert decision(refused)["rules"] == ["beh-inflight"]
    assert decision(after)["decision"] == "ALLOW", decision(after)["reason"]


async def test_a_call_waiting_for_a_concurrency_slot_is_admitted_when_a_policy_reload_raises_the_cap(
    tmp_path: Path,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    caps = policies / "caps.yaml"
    cap = "concurrency:\n  - {id: beh-inflight, upstreams: [beh], max: %d, wait: 1h}\n"
    caps.write_text("rules: []\n" + cap % 1, encoding="utf-8")
    async with gateway_client(behaviour_upstream(tmp_path), policy_dir=policies) as (gateway, client):
        forwarded = signal_when_forwarded(gateway, "beh")
        answered = anyio.Event()

        async def waiting_call() -> None:
            answer = await client.call_tool("beh__echo", {"text": "waited"})
            assert answer.structured_content == {"echo": "waited"}, decision(answer)["reason"]
            answered.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(gateway.call_tool, LOCAL_PRINCIPAL, "s-1", "beh__hang", {"tag": "held"})
                await forwarded.wait()
                tg.start_soon(waiting_call)
                await anyio.wait_all_tasks_blocked()
                caps.write_text("rules: []\n" + cap % 2, encoding="utf-8")

                assert await gateway.reload_policies("test") is None

                await answered.wait()  # while the hanging call still holds the first slot
                tg.cancel_scope.cancel()


# -- calls held for an approval -------------------------------------------------------

SRE = Principal(user="bob", roles=frozenset({"sre"}))
"""An approver of the calls the rules below hold."""
SRE_APPROVERS = Approvers(roles=("sre",))
BREAKER = {
    "id": "beh-breaker",
    "upstreams": ["beh"],
    "consecutive_failures": 1,
    "count_tool_errors": True,
    "open_for": 30,
}


def held_record_policy(tmp_path: Path, ttl: str = "15m") -> Path:
    """A policy folder whose one rule holds ``beh__record`` with ``id: held`` for an SRE's approval."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "hold.yaml").write_text(
        "rules:\n"
        "  - id: record-needs-approval\n"
        "    match: {tools: [beh__record]}\n"
        "    when: {args.id: held}\n"
        "    decision: APPROVAL_REQUIRED\n"
        f"    approval: {{mode: hold, approvers: {{roles: [sre]}}, ttl: {ttl}}}\n",
        encoding="utf-8",
    )
    return policies


def holding_settings(**controls: list[dict[str, Any]]) -> GatewaySettings:
    return with_private_state(
        GatewaySettings.model_validate(
            {"controls": controls, "approvals": {"progress_interval_s": 0.05, "poll_interval_s": 0.05}}
        )
    )


@asynccontextmanager
async def breaker_gateway(
    tmp_path: Path, settings: GatewaySettings
) -> AsyncIterator[tuple[Gateway, ClientSession, HandClock]]:
    """A gateway whose rule holds ``beh__record`` for approval, its controls on a hand clock."""
    async with gateway_client(
        behaviour_upstream(tmp_path), settings, policy_dir=held_record_policy(tmp_path)
    ) as (gateway, client):
        assert gateway.controls is not None
        clock = gateway.controls.clock = HandClock()
        yield gateway, client, clock


def forwarded_records(tmp_path: Path) -> list[str]:
    """The ids of the ``beh__record`` calls that reached the upstream."""
    path = tmp_path / "forwarded.txt"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


@dataclass
class HeldCall:
    """A call held for an approval: ``approval_id`` is known once ``waiting``; ``result`` once ``ended``
    (unless it was cancelled through ``scope``)."""

    waiting: anyio.Event = field(default_factory=anyio.Event)
    ended: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    approval_id: str = ""
    result: types.CallToolResult | None = None


async def hold(gateway: Gateway, tg: TaskGroup, tool: str, arguments: Mapping[str, Any]) -> HeldCall:
    """Start a call the policy holds; return once it waits for a decision (or has already ended)."""
    held = HeldCall()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if not held.waiting.is_set() and message is not None:
            held.approval_id = message.rsplit(" ", 1)[-1]  # "waiting for approval <id>"
            held.waiting.set()

    async def run() -> None:
        try:
            with held.scope:
                held.result = await gateway.call_tool(
                    LOCAL_PRINCIPAL, "s-held", tool, arguments, on_progress=on_progress
                )
        finally:
            held.waiting.set()
            held.ended.set()

    tg.start_soon(run)
    await held.waiting.wait()
    return held


async def decide(gateway: Gateway, held: HeldCall, approve: bool) -> types.CallToolResult:
    assert gateway.services is not None
    await gateway.services.approvals.decide(held.approval_id, SRE, approve, "checked")
    await held.ended.wait()
    assert held.result is not None
    return held.result


def audit_records(settings: GatewaySettings, kind: str) -> list[dict[str, Any]]:
    """The records of the audit entries of ``kind``, oldest first."""
    with closing(sqlite3.connect(settings.state_dir / "audit.db")) as db:
        rows = db.execute("SELECT record FROM entries WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
    return [json.loads(record) for (record,) in rows]


async def test_a_call_approved_after_its_upstreams_breaker_opened_is_refused_by_the_breaker_unforwarded(
    tmp_path: Path,
) -> None:
    settings = holding_settings(breakers=[BREAKER])
    async with breaker_gateway(tmp_path, settings) as (gateway, client, clock):
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__record", {"id": "held"})  # admitted: breaker closed
                await client.call_tool("beh__fail", {})  # opens the breaker while a human decides
                clock.mono = 5.0
                refused = await decide(gateway, held, approve=True)
    assert decision(refused)["decision"] == "BLOCK", decision(refused)["reason"]
    assert decision(refused)["rules"] == ["beh-breaker"]
    assert decision(refused)["retry_after"] == 25.0
    assert decision(refused)["approval_id"] == held.approval_id
    assert "retrying needs a new approval" in decision(refused)["reason"]
    assert forwarded_records(tmp_path) == []
    audited = audit_records(settings, "decision")[-1]
    assert audited["rules"] == ["beh-breaker"] and audited["decision"] == "BLOCK"
    assert audited["details"]["control"] == "circuit_breaker"
    assert audited["details"]["approval_id"] == held.approval_id


async def test_a_held_call_gives_back_its_half_open_probe_permit_while_it_waits(tmp_path: Path) -> None:
    settings = holding_settings(breakers=[{**BREAKER, "half_open_probes": 1}])
    async with breaker_gateway(tmp_path, settings) as (gateway, client, clock):
        await client.call_tool("beh__fail", {})  # opens the breaker
        clock.mono = 30.0  # the next call admitted is the half-open breaker's one probe
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__record", {"id": "held"})
                probe = await client.call_tool("beh__echo", {"text": "probe"})
                approved = await decide(gateway, held, approve=True)
    assert not probe.is_error, decision(probe)["reason"]  # forwarded
    assert not approved.is_error, decision(approved)["reason"]  # forwarded
    assert forwarded_records(tmp_path) == ["held"]


async def test_a_call_approved_while_its_breaker_is_half_open_is_forwarded_as_the_probe(
    tmp_path: Path,
) -> None:
    settings = holding_settings(breakers=[BREAKER])
    async with breaker_gateway(tmp_path, settings) as (gateway, client, clock):
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__record", {"id": "held"})  # admitted: breaker closed
                await client.call_tool("beh__fail", {})  # opens the breaker
                clock.mono = 30.0  # time to probe
                approved = await decide(gateway, held, approve=True)
        breakers = await gateway.controls.snapshot()
    assert not approved.is_error, decision(approved)["reason"]  # forwarded
    assert forwarded_records(tmp_path) == ["held"]
    assert [b.state for b in breakers] == [BreakerState.CLOSED]  # its success closed the breaker


@pytest.mark.parametrize("ending", ["rejected", "expired", "abandoned"])
async def test_a_held_call_that_is_not_approved_gives_back_its_budget_charge(
    tmp_path: Path, ending: str
) -> None:
    one_record = {"id": "one-record", "tools": ["beh__record"], "period": "day", "max_calls": 1}
    settings = holding_settings(budgets=[one_record])
    policies = held_record_policy(tmp_path, ttl="200ms" if ending == "expired" else "15m")
    async with gateway_client(behaviour_upstream(tmp_path), settings, policy_dir=policies) as (
        gateway,
        client,
    ):
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__record", {"id": "held"})  # charged to the budget
                if ending == "rejected":
                    await decide(gateway, held, approve=False)
                elif ending == "abandoned":
                    held.scope.cancel()
                await held.ended.wait()
            after = await client.call_tool("beh__record", {"id": "after"})
    assert not after.is_error, decision(after)["reason"]  # forwarded
    assert forwarded_records(tmp_path) == ["after"]


async def test_a_held_call_holds_no_concurrency_slot_while_it_waits(tmp_path: Path) -> None:
    one_at_a_time = {"id": "beh-inflight", "upstreams": ["beh"], "max": 1}
    settings = holding_settings(concurrency=[one_at_a_time])
    policies = held_record_policy(tmp_path)
    async with gateway_client(behaviour_upstream(tmp_path), settings, policy_dir=policies) as (
        gateway,
        client,
    ):
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__record", {"id": "held"})
                meanwhile = await client.call_tool("beh__echo", {"text": "meanwhile"})
                rejected = await decide(gateway, held, approve=False)
            after = await client.call_tool("beh__echo", {"text": "after"})
    assert not meanwhile.is_error, decision(meanwhile)["reason"]  # forwarded
    assert decision(rejected)["decision"] == "BLOCK"
    assert not after.is_error, decision(after)["reason"]  # forwarded


async def test_a_call_that_can_never_fit_an_approval_required_budget_is_blocked_without_asking_anyone(
    tmp_path: Path,
) -> None:
    frozen = {
        "id": "no-records",
        "tools": ["beh__record"],
        "period": "day",
        "max_calls": 0,
        "decision": "APPROVAL_REQUIRED",
    }
    settings = holding_settings(budgets=[frozen])
    policies = held_record_policy(tmp_path)
    async with gateway_client(behaviour_upstream(tmp_path), settings, policy_dir=policies) as (
        gateway,
        client,
    ):
        with anyio.fail_after(10):
            refused = await client.call_tool("beh__record", {"id": "held"})
        assert gateway.services is not None
        asked = await gateway.services.approvals.list()
    assert decision(refused)["decision"] == "BLOCK", decision(refused)["reason"]
    assert decision(refused)["rules"] == ["no-records"]
    assert "can never admit this call" in decision(refused)["reason"]
    assert "retry_after" not in decision(refused)
    assert asked == []
    assert forwarded_records(tmp_path) == []


# -- controls whose decision is APPROVAL_REQUIRED ----------------------------------------

ONE_RECORD_A_DAY = {
    "id": "one-record-a-day",
    "tools": ["beh__record"],
    "period": "day",
    "max_calls": 1,
    "decision": "APPROVAL_REQUIRED",
    "approval": {"approvers": {"roles": ["sre"]}},
}
ONE_ECHO_AN_HOUR = {
    "id": "one-echo-an-hour",
    "tools": ["beh__echo"],
    "rate": "1/hour",
    "burst": 1,
    "decision": "APPROVAL_REQUIRED",
}


async def test_a_call_over_an_approval_required_budget_is_held_for_a_human_and_charged_once_approved(
    tmp_path: Path,
) -> None:
    settings = holding_settings(budgets=[ONE_RECORD_A_DAY])
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (gateway, client):
        assert gateway.services is not None
        with anyio.fail_after(10):
            first = await client.call_tool("beh__record", {"id": "first"})
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__record", {"id": "over"})
                assert forwarded_records(tmp_path) == ["first"]  # waits for a human, unforwarded
                approved = await decide(gateway, held, approve=True)
            async with anyio.create_task_group() as tg:
                next_one = await hold(gateway, tg, "beh__record", {"id": "next"})
                await decide(gateway, next_one, approve=False)
        asked = {r.id: r for r in await gateway.services.approvals.list()}
    assert not first.is_error, decision(first)["reason"]
    request = asked[held.approval_id]
    assert request.context.rules == ("one-record-a-day",)
    assert request.spec.approvers.roles == ("sre",)  # the budget's approval: block
    assert "1 of 1 calls used" in request.context.reason
    assert not approved.is_error, decision(approved)["reason"]
    assert decision(approved)["decision"] == "ALLOW"
    assert decision(approved)["rules"] == ["one-record-a-day"]
    assert decision(approved)["approval_id"] == held.approval_id
    assert "retry_after" not in decision(approved)
    assert forwarded_records(tmp_path) == ["first", "over"]
    assert "2 of 1 calls used" in asked[next_one.approval_id].context.reason  # the approved call is charged
    (audited,) = [
        e for e in audit_records(settings, "decision") if e["details"].get("approval_id") == held.approval_id
    ]
    assert audited["decision"] == "ALLOW" and audited["rules"] == ["one-record-a-day"]
    assert audited["details"]["control"] == "budget"


async def test_a_call_over_an_approval_required_rate_limit_is_forwarded_once_approved_without_taking_a_token(
    tmp_path: Path,
) -> None:
    settings = holding_settings(limits=[ONE_ECHO_AN_HOUR])
    settings = settings.model_copy(
        update={"approvals": settings.approvals.model_copy(update={"default_approvers": SRE_APPROVERS})}
    )
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (gateway, client):
        assert gateway.controls is not None and gateway.services is not None
        clock = gateway.controls.clock = HandClock()
        with anyio.fail_after(10):
            first = await client.call_tool("beh__echo", {"text": "first"})
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__echo", {"text": "over"})
                approved = await decide(gateway, held, approve=True)
            clock.mono = 3600.0  # one token back: the approved call took none, so owes none
            after = await client.call_tool("beh__echo", {"text": "after"})
        (request,) = await gateway.services.approvals.list()
    assert not first.is_error, decision(first)["reason"]
    assert request.spec.approvers.empty  # no approval: block, so approvals.default_approvers decide
    assert not approved.is_error, decision(approved)["reason"]
    assert decision(approved)["rules"] == ["one-echo-an-hour"]
    assert decision(approved)["approval_id"] == held.approval_id
    assert not after.is_error, decision(after)["reason"]
    assert decision(after)["rules"] == []


async def test_a_deferred_call_over_an_approval_required_budget_is_charged_once_when_its_retry_runs(
    tmp_path: Path,
) -> None:
    deferring = {**ONE_RECORD_A_DAY, "approval": {"mode": "defer", "approvers": {"roles": ["sre"]}}}
    settings = holding_settings(budgets=[deferring])
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (gateway, client):
        assert gateway.services is not None
        with anyio.fail_after(10):
            await client.call_tool("beh__record", {"id": "first"})
            deferred = await client.call_tool("beh__record", {"id": "over"})
            again = await client.call_tool("beh__record", {"id": "over"})  # before anyone decided
            approval_id = decision(deferred)["approval_id"]
            await gateway.services.approvals.decide(approval_id, SRE, True, "one more is fine")
            retried = await client.call_tool("beh__record", {"id": "over"})
            next_one = await client.call_tool("beh__record", {"id": "next"})
        asked = {r.id: r for r in await gateway.services.approvals.list()}
    assert decision(deferred)["decision"] == "APPROVAL_REQUIRED", decision(deferred)["reason"]
    assert decision(deferred)["rules"] == ["one-record-a-day"]
    assert "retry_after" not in decision(deferred)  # retry once approved, not at the reset
    assert decision(again)["approval_id"] == approval_id
    assert not retried.is_error, decision(retried)["reason"]
    assert decision(retried)["approval_id"] == approval_id
    assert forwarded_records(tmp_path) == ["first", "over"]
    assert decision(next_one)["decision"] == "APPROVAL_REQUIRED"
    # charged once: for the retry that ran, not for the refusals before it
    assert "2 of 1 calls used" in asked[decision(next_one)["approval_id"]].context.reason
    decisions = audit_records(settings, "decision")
    audited = [e for e in decisions if e["details"].get("approval_id") == approval_id]
    assert [e["decision"] for e in audited] == ["APPROVAL_REQUIRED", "APPROVAL_REQUIRED", "ALLOW"]
    assert all(e["rules"] == ["one-record-a-day"] for e in audited)


async def test_a_call_over_an_approval_required_limit_is_refused_by_an_open_breaker_without_asking_anyone(
    tmp_path: Path,
) -> None:
    settings = holding_settings(limits=[ONE_ECHO_AN_HOUR], breakers=[BREAKER])
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (gateway, client):
        assert gateway.controls is not None and gateway.services is not None
        gateway.controls.clock = HandClock()
        with anyio.fail_after(10):
            await client.call_tool("beh__echo", {"text": "first"})
            await client.call_tool("beh__fail", {})  # opens the breaker
            refused = await client.call_tool("beh__echo", {"text": "over"})
        asked = await gateway.services.approvals.list()
    assert decision(refused)["decision"] == "BLOCK"
    assert decision(refused)["rules"] == ["beh-breaker"]
    assert asked == []


async def test_a_call_both_a_rule_and_a_budget_ask_approval_for_files_one_request_as_the_rule_says(
    tmp_path: Path,
) -> None:
    finance_budget = {**ONE_RECORD_A_DAY, "approval": {"approvers": {"roles": ["finance"]}}}
    settings = holding_settings(budgets=[finance_budget])
    policies = held_record_policy(tmp_path)
    async with gateway_client(behaviour_upstream(tmp_path), settings, policy_dir=policies) as (
        gateway,
        client,
    ):
        assert gateway.services is not None
        with anyio.fail_after(10):
            await client.call_tool("beh__record", {"id": "first"})  # the rule does not ask for this one
            async with anyio.create_task_group() as tg:
                held = await hold(gateway, tg, "beh__record", {"id": "held"})
                approved = await decide(gateway, held, approve=True)
        (request,) = await gateway.services.approvals.list()
    assert request.context.rules == ("record-needs-approval", "one-record-a-day")
    assert "Budget 'one-record-a-day' (day) exhausted" in request.context.reason
    assert request.spec.approvers.roles == ("sre",)  # the rule's approval: block
    assert not approved.is_error, decision(approved)["reason"]
    assert forwarded_records(tmp_path) == ["first", "held"]


async def test_a_breaker_that_opens_is_recorded_in_the_audit_log(tmp_path: Path) -> None:
    settings = holding_settings(breakers=[BREAKER])
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        await client.call_tool("beh__fail", {})
    [opened] = audit_records(settings, "breaker")
    assert (opened["breaker"], opened["old"], opened["new"]) == ("beh-breaker", "closed", "open")


@dataclass
class BreakerEntriesRefused:
    """The gateway's audit log, except that it cannot take an entry about a circuit breaker."""

    log: AuditLog

    async def append(self, kind: str, record: Mapping[str, Any]) -> AuditReceipt:
        if kind == "breaker":
            raise AuditUnavailableError("disk full")
        return await self.log.append(kind, record)

    def append_behind(self, kind: str, build: RecordBuilder, on_failure: FailureHandler) -> None:
        if kind == "breaker":
            on_failure(AuditUnavailableError("disk full"))
        else:
            self.log.append_behind(kind, build, on_failure)

    async def durable(self, receipt: AuditReceipt) -> None:
        await self.log.durable(receipt)


async def test_a_breaker_change_the_audit_log_cannot_take_is_logged_and_calls_go_on_being_decided(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = behaviour_upstream(tmp_path)
    async with gateway_client(upstream, settings(breakers=[BREAKER])) as (gateway, client):
        assert gateway.services is not None
        gateway.services.audit = BreakerEntriesRefused(gateway.services.audit)
        await client.call_tool("beh__fail", {})  # opens the breaker
        refused = await client.call_tool("beh__echo", {"text": "x"})
    assert decision(refused)["rules"] == ["beh-breaker"]
    assert "could not audit circuit breaker beh-breaker changing state: disk full" in caplog.text
