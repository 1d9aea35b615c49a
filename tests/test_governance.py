"""Governance end to end: policies, inspection, approvals, limits, result handling, pinning, reload."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from mcp import ClientSession, types
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_guard.assemble import http_app
from mcp_guard.config.settings import GatewaySettings, load_settings
from mcp_guard.errors import ConfigError
from mcp_guard.gateway import Gateway
from mcp_guard.pinning import commands as tools_commands
from mcp_guard.policy import PolicySet, rego_check
from mcp_guard.principal import LOCAL_PRINCIPAL, Principal
from mcp_guard.risk import FACTORS
from tests.harness import (
    FAST_BACKOFF,
    INITIALIZE_REQUEST,
    MCP_POST_HEADERS,
    ROOT,
    behaviour_upstream,
    demo_upstreams_yaml,
    gateway_client,
    logged_errors,
    serve_http,
    with_private_state,
    write_upstreams,
)

pytestmark = pytest.mark.anyio

POLICIES = ROOT / "policies"
DEMO = demo_upstreams_yaml("bank", "db", "mail")
FIONA = Principal(user="fiona", agent="claude", roles=frozenset({"analyst"}), teams=frozenset({"finance"}))
ALEX = Principal(user="alex", roles=frozenset({"finance-admin"}), teams=frozenset({"finance"}))


def decision(result: object) -> dict[str, object]:
    assert isinstance(result, types.CallToolResult) and result.meta is not None
    found: dict[str, object] = result.meta["mcp-guard/decision"]
    return found


def text(result: object) -> str:
    assert isinstance(result, types.CallToolResult)
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_a_social_security_number_in_the_arguments_is_blocked_by_the_policy(tmp_path: Path) -> None:
    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=FIONA, policy_dir=POLICIES) as (
        _,
        client,
    ):
        result = await client.call_tool(
            "bank__refund", {"payment_id": "p-1", "amount": 20, "reason": "customer 536-22-1234 asked"}
        )
        fine = await client.call_tool(
            "bank__refund", {"payment_id": "p-1", "amount": 20, "reason": "damaged"}
        )
    assert isinstance(result, types.CallToolResult) and result.is_error
    assert decision(result)["decision"] == "BLOCK" and decision(result)["rules"] == ["block-ssn"]
    assert "block-ssn" in text(result) and decision(result)["audit_id"]
    assert isinstance(fine, types.CallToolResult) and not fine.is_error
    assert decision(fine)["decision"] == "ALLOW"


async def test_tools_hidden_by_policy_are_absent_from_the_list_and_unknown_when_called(
    tmp_path: Path,
) -> None:
    outsider = Principal(user="sam", roles=frozenset({"support"}), teams=frozenset({"support"}))
    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=outsider, policy_dir=POLICIES) as (
        _,
        client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        with pytest.raises(MCPError, match="Unknown tool: bank__transfer"):
            await client.call_tool(
                "bank__transfer", {"from_account": "ACC-1001", "to_iban": "x", "amount": 1}
            )
    assert "bank__transfer" not in names and "bank__get_balance" in names


SECRET = "governance-tests-secret-0123456789abcdef"
AUDIENCE = "http://127.0.0.1:8765/mcp"


def bearer(principal: Principal) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "sub": principal.user,
        "agent_id": principal.agent,
        "roles": sorted(principal.roles),
        "groups": sorted(principal.teams),
        "iss": "https://idp.test",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


def demo_gateway_with_tokens(tmp_path: Path, extra_settings: str = "") -> Gateway:
    """The demo upstreams under the bundled policies, callers known by :func:`bearer` tokens."""
    (tmp_path / "mcp-guard.yaml").write_text(
        f"""
auth:
  issuer: https://idp.test
  audience: {AUDIENCE}
  keys: [{{secret: "{SECRET}", algorithms: [HS256]}}]
state_dir: {tmp_path / "state"}
{extra_settings}""",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path / "mcp-guard.yaml")
    return Gateway(write_upstreams(tmp_path, DEMO), settings, policy_dir=POLICIES, backoff=FAST_BACKOFF)


async def test_a_held_refund_runs_when_a_finance_admin_approves_it_through_the_admin_api(
    tmp_path: Path,
) -> None:
    gateway = demo_gateway_with_tokens(tmp_path, "approvals: {progress_interval_s: 0.05}\n")
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with (
        serve_http(http_app(gateway)) as url,
        httpx2.AsyncClient(headers=bearer(FIONA)) as fiona_http,
        httpx2.AsyncClient(base_url=url, headers=bearer(ALEX)) as alex,
        streamable_http_client(f"{url}/mcp", http_client=fiona_http) as (read, write),
        ClientSession(read, write) as fiona,
    ):
        await fiona.initialize()
        outcome: dict[str, object] = {}

        async def refund() -> None:
            outcome["result"] = await fiona.call_tool(
                "bank__refund",
                {"payment_id": "p-9", "amount": 2500, "reason": "duplicate charge"},
                progress_callback=on_progress,
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(refund)
            with anyio.fail_after(20):
                pending: Any = []
                while not pending:  # the request appears once the policy decided
                    pending = (await alex.get("/admin/approvals", params={"state": "pending"})).json()
                    pending = pending["approvals"]
            request_id = str(pending[0]["id"])
            shown = (await alex.get(f"/admin/approvals/{request_id}")).json()
            assert json.dumps(shown).count("refund-needs-approval") >= 1
            with anyio.fail_after(10):  # the held call is kept alive with progress notifications
                while not progress:
                    await anyio.lowlevel.checkpoint()
            self_approval = await fiona_http.post(
                f"{url}/admin/approvals/{request_id}/approve", json={"reason": "mine"}
            )
            assert self_approval.status_code in (403, 404)
            approved = await alex.post(f"/admin/approvals/{request_id}/approve", json={"reason": "verified"})
            assert approved.status_code == 200
    result = outcome["result"]
    assert isinstance(result, types.CallToolResult) and not result.is_error
    assert result.structured_content is not None and result.structured_content["amount"] == 2500
    assert decision(result)["approval_id"] == request_id
    assert all("waiting for approval" in (m or "") for m in progress)


async def test_a_deferred_transfer_runs_once_after_approval_and_not_with_other_arguments(
    tmp_path: Path,
) -> None:
    args = {"from_account": "ACC-1001", "to_iban": "DE89370400440532013000", "amount": 15000}
    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=FIONA, policy_dir=POLICIES) as (
        gateway,
        client,
    ):
        first = await client.call_tool("bank__transfer", args)
        assert decision(first)["decision"] == "APPROVAL_REQUIRED"
        approval_id = str(decision(first)["approval_id"])
        assert approval_id in text(first) and "Retry the same call" in text(first)
        assert gateway.services is not None
        await gateway.services.approvals.decide(approval_id, ALEX, approve=True, reason="checked with Fiona")
        changed = await client.call_tool("bank__transfer", {**args, "amount": 15001})
        retried = await client.call_tool("bank__transfer", args)
        again = await client.call_tool("bank__transfer", args)
    assert decision(changed)["decision"] == "APPROVAL_REQUIRED"
    assert isinstance(retried, types.CallToolResult) and not retried.is_error
    assert "Transferred 15000.00" in text(retried) and decision(retried)["approval_id"] == approval_id
    # The approval was used up: the same call again is not forwarded (the risk score of a repeated
    # large transfer may even block it outright).
    assert isinstance(again, types.CallToolResult) and again.is_error
    assert decision(again)["decision"] in ("APPROVAL_REQUIRED", "BLOCK")
    assert decision(again).get("approval_id") != approval_id


async def test_an_approval_request_shows_the_approver_the_risk_breakdown_of_the_call_it_holds(
    tmp_path: Path,
) -> None:
    args = {"from_account": "ACC-1001", "to_iban": "DE89370400440532013000", "amount": 15000}
    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=FIONA, policy_dir=POLICIES) as (
        gateway,
        client,
    ):
        held = await client.call_tool("bank__transfer", args)
        assert gateway.services is not None
        request = await gateway.services.approvals.get(str(decision(held)["approval_id"]))
    assert request is not None
    breakdown = request.context.risk_breakdown
    assert breakdown["score"] == request.context.risk == decision(held)["risk"]
    assert list(breakdown["factors"]) == list(FACTORS)
    assert breakdown["factors"]["action"]["score"] > 0 and breakdown["reasons"]


async def test_a_call_over_the_pending_approvals_cap_is_blocked_and_audited_like_any_block(
    tmp_path: Path,
) -> None:
    settings = GatewaySettings.model_validate({"approvals": {"max_pending_per_principal": 1}})
    args = {"from_account": "ACC-1001", "to_iban": "DE89370400440532013000", "amount": 15000}
    async with gateway_client(
        write_upstreams(tmp_path, DEMO), settings, principal=FIONA, policy_dir=POLICIES
    ) as (gateway, client):
        first = await client.call_tool("bank__transfer", args)
        over = await client.call_tool("bank__transfer", {**args, "amount": 15001})
        assert gateway.services is not None
        pending = await gateway.services.approvals.list()
        audit_db = gateway.services.audit.config.path  # type: ignore[attr-defined]
    assert decision(first)["decision"] == "APPROVAL_REQUIRED"
    assert isinstance(over, types.CallToolResult) and over.is_error
    assert decision(over)["decision"] == "BLOCK" and "approval_id" not in decision(over)
    assert "max_pending_per_principal = 1" in text(over)
    assert [r.id for r in pending] == [decision(first)["approval_id"]]
    with closing(sqlite3.connect(audit_db)) as db:
        blocked = db.execute(
            "SELECT json_extract(record, '$.reason') FROM entries WHERE kind = 'decision' "
            "AND json_extract(record, '$.decision') = 'BLOCK'"
        ).fetchall()
    assert len(blocked) == 1 and "max_pending_per_principal = 1" in blocked[0][0]


async def test_a_history_rule_across_the_principal_counts_calls_from_every_connection(tmp_path: Path) -> None:
    """Reconnecting for each call must not reset a burst rule that counts across the principal."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "burst.yaml").write_text(
        """
rules:
  - id: echo-burst
    priority: 10
    match: {tools: ["beh__echo"]}
    when:
      history: {tool: "beh__echo", within: 60s, count: {gte: 2}, across: principal}
    decision: BLOCK
  - id: echo-burst-per-connection
    priority: 20
    match: {tools: ["beh__echo"]}
    when:
      history: {tool: "beh__echo", within: 60s, count: {gte: 2}}
    decision: WARN
""",
        encoding="utf-8",
    )
    async with gateway_client(behaviour_upstream(tmp_path), policy_dir=policies) as (gateway, _):
        results = [
            await gateway.call_tool(LOCAL_PRINCIPAL, f"connection-{i}", "beh__echo", {"text": "x"})
            for i in range(3)
        ]
        other = await gateway.call_tool(FIONA, "connection-9", "beh__echo", {"text": "x"})
    assert [decision(r)["decision"] == "BLOCK" for r in results] == [False, False, True]
    assert decision(results[2])["rules"] == ["echo-burst"]
    assert decision(other)["decision"] != "BLOCK"  # another principal's count is its own


async def test_a_flood_of_sessions_by_one_principal_does_not_reset_anothers_per_connection_history(
    tmp_path: Path,
) -> None:
    """Opening session after session must not evict another principal's session (and so
    reset the history rules that count its connection)."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "burst.yaml").write_text(
        """
risk_thresholds: {}
rules:
  - id: echo-burst-per-connection
    priority: 10
    match: {tools: ["beh__echo"]}
    when:
      history: {tool: "beh__echo", within: 60s, count: {gte: 1}}
    decision: BLOCK
""",
        encoding="utf-8",
    )
    settings = GatewaySettings.model_validate({"sessions": {"max_sessions": 4}})
    async with gateway_client(behaviour_upstream(tmp_path), settings, policy_dir=policies) as (gateway, _):
        first = await gateway.call_tool(FIONA, "fiona-connection", "beh__echo", {"text": "x"})
        for i in range(10):  # another principal opens session after session
            await gateway.call_tool(LOCAL_PRINCIPAL, f"flood-{i}", "beh__echo", {"text": "x"})
        again = await gateway.call_tool(FIONA, "fiona-connection", "beh__echo", {"text": "x"})
    assert decision(first)["decision"] == "ALLOW"
    assert decision(again)["decision"] == "BLOCK"  # her connection still remembers the first call
    assert decision(again)["rules"] == ["echo-burst-per-connection"]


async def test_a_rate_limit_in_a_policy_file_refuses_the_excess_call_with_retry_after(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "limits.yaml").write_text(
        """
limits:
  - id: balance-reads
    tools: ["bank__get_balance"]
    per: [agent]
    rate: 2/minute
    burst: 2
""",
        encoding="utf-8",
    )
    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=FIONA, policy_dir=policies) as (
        _,
        client,
    ):
        results = [await client.call_tool("bank__get_balance", {"account": "ACC-1001"}) for _ in range(3)]
    assert [decision(r)["decision"] for r in results] == ["ALLOW", "ALLOW", "BLOCK"]
    assert decision(results[2])["rules"] == ["balance-reads"]
    assert float(decision(results[2])["retry_after"]) > 0  # type: ignore[arg-type]


async def test_pii_in_a_result_is_redacted_and_planted_instructions_are_flagged(tmp_path: Path) -> None:
    settings = GatewaySettings.model_validate({"results": {"redact": ["pii", "secret"], "injection": "flag"}})
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        result = await client.call_tool("beh__leak", {})
    body = text(result)
    assert "4111 1111 1111 1111" not in body and "[REDACTED:CREDIT_CARD]" in body
    assert "jane.roe@corp-mail.example" not in body
    assert decision(result)["decision"] == "WARN"
    assert "[mcp-guard warning]" in body


async def test_a_result_with_planted_instructions_can_be_withheld(tmp_path: Path) -> None:
    settings = GatewaySettings.model_validate({"results": {"injection": "block"}})
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        result = await client.call_tool("beh__leak", {})
    assert isinstance(result, types.CallToolResult) and result.is_error
    assert decision(result)["rules"] == ["result-injection"] and "exfil@evil.example" not in text(result)


async def test_a_changed_tool_definition_is_quarantined_until_an_operator_accepts_it(tmp_path: Path) -> None:
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    settings = with_private_state(None)
    async with gateway_client(behaviour_upstream(tmp_path), settings, message_handler=on_message) as (
        gateway,
        client,
    ):
        await client.call_tool("beh__mutate", {})
        with anyio.fail_after(10):
            await changed.wait()
        names = {t.name for t in (await client.list_tools()).tools}
        assert "beh__echo" not in names and "beh__fail" in names
        with pytest.raises(MCPError, match="Unknown tool: beh__echo"):
            await client.call_tool("beh__echo", {"text": "x"})
        parser = argparse.ArgumentParser()
        tools_commands.register(parser.add_subparsers())
        args = parser.parse_args(
            [
                "tools",
                "accept",
                "beh",
                "echo",
                "--db",
                str(settings.state_dir / "pins.db"),
                "--as-user",
                "operator",
            ]
        )
        assert await anyio.to_thread.run_sync(args.func, args) == 0
        await gateway.refresh_pins()
        result = await client.call_tool("beh__echo", {"text": "back"})
    assert isinstance(result, types.CallToolResult) and result.structured_content == {"echo": "back"}


async def test_a_broken_policy_file_never_replaces_the_running_policies(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    rules = policies / "rules.yaml"
    rules.write_text(
        "rules:\n  - id: no-inbox\n    match: {tools: ['mail__list_inbox']}\n    decision: BLOCK\n",
        encoding="utf-8",
    )
    settings = with_private_state(None)
    async with gateway_client(
        write_upstreams(tmp_path, DEMO), settings, principal=FIONA, policy_dir=policies
    ) as (gateway, client):
        assert decision(await client.call_tool("mail__list_inbox", {}))["rules"] == ["no-inbox"]
        rules.write_text(
            "rules:\n  - id: no-inbox\n    match: {tools: ['mail__list_inbox']}\n    decision: NOPE\n",
            encoding="utf-8",
        )
        error = await gateway.reload_policies("test")
        assert error is not None and any("rules.yaml:4" in p for p in error.problems)
        assert decision(await client.call_tool("mail__list_inbox", {}))["rules"] == ["no-inbox"]
        rules.write_text("rules: []\n", encoding="utf-8")
        assert await gateway.reload_policies("test") is None
        assert decision(await client.call_tool("mail__list_inbox", {}))["decision"] == "ALLOW"
    with sqlite3.connect(settings.state_dir / "audit.db") as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM entries ORDER BY seq")]
    assert "config_error" in kinds and kinds.count("policy_reload") >= 2


INBOX_RULE = "rules:\n  - {{id: {id}, match: {{tools: ['mail__list_inbox']}}, decision: {decision}}}\n"


def policy_file(tmp_path: Path, text: str) -> Path:
    """``rules.yaml`` holding ``text``, alone in a policy folder (its parent)."""
    policies = tmp_path / "policies"
    policies.mkdir()
    rules = policies / "rules.yaml"
    rules.write_text(text, encoding="utf-8")
    return rules


def after_each_load(gateway: Gateway, hook: Callable[[int], None]) -> None:
    """Run ``hook(n)`` in the worker thread of the gateway's n-th policy load (from 1), once
    the folder is loaded and before the set is handed back to be applied."""
    store = gateway.policy_store
    assert store is not None
    load, loads = store.try_reload, itertools.count(1)

    def loading() -> tuple[PolicySet, ConfigError | None]:
        loaded = load()
        hook(next(loads))
        return loaded

    store.try_reload = loading  # type: ignore[method-assign]


async def test_a_reload_whose_load_finishes_last_does_not_put_back_the_older_policies(tmp_path: Path) -> None:
    rules = policy_file(tmp_path, "rules: []\n")
    first_loaded, second_applied = threading.Event(), threading.Event()

    def first_hands_back_last(n: int) -> None:
        if n == 1:
            first_loaded.set()
            second_applied.wait(10)

    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=FIONA, policy_dir=rules.parent) as (
        gateway,
        client,
    ):
        after_each_load(gateway, first_hands_back_last)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                rules.write_text(INBOX_RULE.format(id="old-block", decision="BLOCK"), encoding="utf-8")
                tg.start_soon(gateway.reload_policies, "first")
                await anyio.to_thread.run_sync(first_loaded.wait)
                rules.write_text(INBOX_RULE.format(id="new-warn", decision="WARN"), encoding="utf-8")
                assert await gateway.reload_policies("second") is None
                second_applied.set()
        result = await client.call_tool("mail__list_inbox", {})
    assert decision(result)["rules"] == ["new-warn"], decision(result)


async def test_a_reload_returns_once_the_newest_loaded_policies_are_in_force(tmp_path: Path) -> None:
    rules = policy_file(tmp_path, "rules: []\n")
    first_loaded, second_loaded, first_returned = threading.Event(), threading.Event(), threading.Event()

    def loads_overlap(n: int) -> None:
        """The second reload (e.g. the file watcher's) loads newer files while the first one's
        set is on its way back, and hands its own set back only after the first returned."""
        (first_loaded if n == 1 else second_loaded).set()
        (second_loaded if n == 1 else first_returned).wait(10)

    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=FIONA, policy_dir=rules.parent) as (
        gateway,
        client,
    ):
        after_each_load(gateway, loads_overlap)
        seen: list[dict[str, object]] = []

        async def first_reload() -> None:
            assert await gateway.reload_policies("first") is None
            seen.append(decision(await client.call_tool("mail__list_inbox", {})))
            first_returned.set()

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                rules.write_text(INBOX_RULE.format(id="old-block", decision="BLOCK"), encoding="utf-8")
                tg.start_soon(first_reload)
                await anyio.to_thread.run_sync(first_loaded.wait)
                rules.write_text(INBOX_RULE.format(id="new-warn", decision="WARN"), encoding="utf-8")
                tg.start_soon(gateway.reload_policies, "second")
    assert [d["rules"] for d in seen] == [["new-warn"]], seen


async def test_a_policy_change_the_audit_log_cannot_record_is_logged_and_the_gateway_keeps_answering(
    tmp_path: Path,
) -> None:
    no_echo = "rules:\n  - {id: no-echo, match: {tools: ['beh__echo']}, decision: BLOCK}\n"
    rules = policy_file(tmp_path, no_echo)
    policies = rules.parent
    settings = with_private_state(GatewaySettings.model_validate({"audit": {"busy_timeout_ms": 50}}))
    with logged_errors("mcp_guard.gateway") as errors:
        async with gateway_client(behaviour_upstream(tmp_path), settings, policy_dir=policies) as (_, client):
            assert decision(await client.call_tool("beh__echo", {"text": "x"}))["rules"] == ["no-echo"]
            with closing(sqlite3.connect(settings.state_dir / "audit.db", isolation_level=None)) as holder:
                holder.execute("BEGIN IMMEDIATE")  # the audit log cannot be written for now
                edited = policies / ".rules.yaml.new"
                edited.write_text("rules: []\n", encoding="utf-8")
                os.replace(edited, rules)  # an operator deploys new policies; the watcher reloads them
                with anyio.fail_after(10):
                    await errors.wait_for()
                holder.execute("ROLLBACK")
            result = await client.call_tool("beh__echo", {"text": "back"})
    assert isinstance(result, types.CallToolResult) and result.structured_content == {"echo": "back"}
    [error] = errors.messages
    assert "could not audit the policy reload (policy files changed)" in error
    assert "database is locked" in error


async def test_after_a_policy_reload_calls_are_decided_by_the_action_classes_it_gives(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    rules = policies / "rules.yaml"
    no_deletes = "rules:\n  - {id: no-deletes, match: {actions: [delete]}, decision: BLOCK}\n"
    rules.write_text(f"{no_deletes}actions:\n  beh__echo: [delete]\n", encoding="utf-8")
    async with gateway_client(behaviour_upstream(tmp_path), policy_dir=policies) as (gateway, client):
        assert decision(await client.call_tool("beh__echo", {"text": "x"}))["rules"] == ["no-deletes"]
        rules.write_text(f"{no_deletes}actions:\n  beh__echo: [read]\n", encoding="utf-8")
        assert await gateway.reload_policies("test") is None
        result = await client.call_tool("beh__echo", {"text": "back"})
    assert isinstance(result, types.CallToolResult) and result.structured_content == {"echo": "back"}


async def test_a_circuit_breaker_opens_after_repeated_timeouts_and_fails_fast(tmp_path: Path) -> None:
    settings = GatewaySettings.model_validate(
        {
            "controls": {
                "breakers": [
                    {"id": "beh-breaker", "upstreams": ["beh"], "consecutive_failures": 2, "open_for": 60}
                ]
            }
        }
    )
    upstreams = behaviour_upstream(tmp_path, call_timeout_s="0.3")
    async with gateway_client(upstreams, settings) as (_, client):
        for tag in ("a", "b"):
            timed_out = await client.call_tool("beh__hang", {"tag": tag})
            assert "did not answer" in text(timed_out)
        started = time.perf_counter()
        refused = await client.call_tool("beh__echo", {"text": "x"})
        elapsed = time.perf_counter() - started
    assert decision(refused)["decision"] == "BLOCK" and decision(refused)["rules"] == ["beh-breaker"]
    assert elapsed < 0.3
    assert isinstance(decision(refused)["retry_after"], float) and decision(refused)["retry_after"] > 0


async def test_a_deferred_approval_given_while_the_gateway_was_down_is_honoured_after_restart(
    tmp_path: Path,
) -> None:
    from mcp_guard.approvals import commands as approvals_commands
    from mcp_guard.audit import verify
    from mcp_guard.signing import load_signing_key, public_key_pem

    state = tmp_path / "state"
    settings = GatewaySettings(state_dir=state)
    upstreams = write_upstreams(tmp_path, DEMO)
    args = {"from_account": "ACC-1001", "to_iban": "DE89370400440532013000", "amount": 12000}
    async with gateway_client(upstreams, settings, principal=FIONA, policy_dir=POLICIES) as (_, client):
        first = await client.call_tool("bank__transfer", args)
    approval_id = str(decision(first)["approval_id"])

    parser = argparse.ArgumentParser()
    approvals_commands.register(parser.add_subparsers())
    approve = parser.parse_args(
        [
            "approvals",
            "approve",
            approval_id,
            "--db",
            str(state / "approvals.db"),
            "--key",
            str(state / "keys" / "approvals-signing.pem"),
            "--as-user",
            "alex",
            "--roles",
            "finance-admin",
            "--teams",
            "finance",
            "--reason",
            "called the customer",
            "--audit-db",
            str(state / "audit.db"),
            "--audit-key",
            str(state / "keys" / "audit-signing.pem"),
        ]
    )
    assert await anyio.to_thread.run_sync(approve.func, approve) == 0

    async with gateway_client(upstreams, settings, principal=FIONA, policy_dir=POLICIES) as (_, client):
        retried = await client.call_tool("bank__transfer", args)
    assert isinstance(retried, types.CallToolResult) and not retried.is_error
    assert decision(retried)["approval_id"] == approval_id
    key = load_signing_key(state / "keys" / "audit-signing.pem")
    assert verify(state / "audit.db", public_key_pem(key)).ok


async def policy_warnings(tmp_path: Path, match: str) -> tuple[Path, list[str]]:
    """The warnings a gateway on the demo upstreams reports for one BLOCK rule ``typo`` with ``match``."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "rules.yaml").write_text(
        f"rules:\n  - id: typo\n    match: {match}\n    decision: BLOCK\n", encoding="utf-8"
    )
    async with gateway_client(write_upstreams(tmp_path, DEMO), principal=FIONA, policy_dir=policies) as (
        gateway,
        _,
    ):
        return policies, gateway.report_policy_warnings()


async def test_a_rule_whose_tool_pattern_matches_no_listed_tool_is_reported(tmp_path: Path) -> None:
    _, warnings = await policy_warnings(tmp_path, "{tools: ['bnak__*']}")
    assert any("rules.yaml:2" in w and "'bnak__*' matches no known tool" in w for w in warnings)


async def test_a_rule_naming_an_upstream_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    policies, warnings = await policy_warnings(tmp_path, "{upstreams: [bank, bnak]}")
    assert [w for w in warnings if "upstream" in w] == [
        f"{policies / 'rules.yaml'}:2: rule 'typo': upstream 'bnak' is not a configured upstream"
    ]


async def test_a_held_call_whose_client_drops_its_request_is_abandoned_and_cannot_be_approved_later(
    tmp_path: Path,
) -> None:
    gateway = demo_gateway_with_tokens(tmp_path)
    headers = {**MCP_POST_HEADERS, **bearer(FIONA)}
    refund = {"payment_id": "p-9", "amount": 2500, "reason": "duplicate charge"}
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "bank__refund", "arguments": refund},
    }
    async with (
        serve_http(http_app(gateway)) as url,
        httpx2.AsyncClient(base_url=url, headers=headers) as fiona,
        httpx2.AsyncClient(base_url=url, headers=bearer(ALEX)) as alex,
    ):
        opened = await fiona.post("/mcp", json=INITIALIZE_REQUEST)
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        await fiona.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
        )
        with anyio.fail_after(20):
            async with fiona.stream("POST", "/mcp", json=call, headers=session) as held:
                assert held.status_code == 200
                pending: Any = []
                while not pending:  # the request appears once the policy decided
                    pending = (await alex.get("/admin/approvals", params={"state": "pending"})).json()[
                        "approvals"
                    ]
            # leaving the block closed the held POST's connection
            request_id = str(pending[0]["id"])
            state = "pending"
            while state == "pending":
                state = (await alex.get(f"/admin/approvals/{request_id}")).json()["state"]
        late = await alex.post(f"/admin/approvals/{request_id}/approve", json={"reason": "verified"})
    assert state == "abandoned"
    assert late.status_code == 409


RUNAWAY_REGO = """
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW", "rules": []}

decision := {"decision": "WARN", "rules": ["aaa"]} if regex.match("^(a+)+$", input.arguments.text)
"""


async def test_a_rego_decision_that_runs_away_never_holds_up_other_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rego_check, "QUERY_TIMEOUT_S", 3.0)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "runaway.rego").write_text(RUNAWAY_REGO, encoding="utf-8")
    async with gateway_client(behaviour_upstream(tmp_path), policy_dir=policies) as (_, client):
        outcome: dict[str, object] = {}

        async def hostile() -> None:  # regopy's regex backtracks for minutes on this
            outcome["result"] = await client.call_tool("beh__echo", {"text": "a" * 40 + "!"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(hostile)
            await anyio.lowlevel.checkpoint()
            with anyio.fail_after(2):  # well before the runaway decision is given up
                listed = await client.list_tools()
            assert "result" not in outcome
    assert "beh__echo" in {t.name for t in listed.tools}
    result = outcome["result"]
    assert decision(result)["decision"] == "BLOCK" and decision(result)["rules"] == ["rego-error"]
    assert "did not answer within 3s" in text(result)


async def test_an_accept_is_exposed_only_once_audited_and_an_audit_outage_does_not_stop_the_gateway(
    tmp_path: Path,
) -> None:
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    settings = with_private_state(GatewaySettings.model_validate({"audit": {"busy_timeout_ms": 50}}))
    async with gateway_client(behaviour_upstream(tmp_path), settings, message_handler=on_message) as (
        gateway,
        client,
    ):
        await client.call_tool("beh__mutate", {})
        with anyio.fail_after(10):
            await changed.wait()
        parser = argparse.ArgumentParser()
        tools_commands.register(parser.add_subparsers())
        args = parser.parse_args(
            ["tools", "accept", "beh", "echo", "--db", str(settings.state_dir / "pins.db"), "--as-user", "op"]
        )
        assert await anyio.to_thread.run_sync(args.func, args) == 0
        assert gateway.services is not None
        audit_db = gateway.services.audit.config.path  # type: ignore[attr-defined]
        with closing(sqlite3.connect(audit_db, isolation_level=None)) as holder:
            holder.execute("BEGIN IMMEDIATE")  # the audit log cannot be written for now
            await gateway.refresh_pins()  # logged, not raised: the gateway keeps serving
            with pytest.raises(MCPError, match="Unknown tool: beh__echo"):
                await client.call_tool("beh__echo", {"text": "x"})  # not exposed before it is audited
            holder.execute("ROLLBACK")
        await gateway.refresh_pins()
        result = await client.call_tool("beh__echo", {"text": "back"})
    assert isinstance(result, types.CallToolResult) and result.structured_content == {"echo": "back"}
    with closing(sqlite3.connect(audit_db)) as db:
        accepted = db.execute(
            "SELECT COUNT(*) FROM entries WHERE kind = 'tool_pin' "
            "AND json_extract(record, '$.event') = 'accepted' AND json_extract(record, '$.by') = 'op'"
        ).fetchone()[0]
    assert accepted == 1
