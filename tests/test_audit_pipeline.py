"""Every decision is in the audit log before the call runs; without the log nothing runs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from mcp_guard.audit import verify
from mcp_guard.config.settings import AuditSettings, GatewaySettings
from mcp_guard.signing import load_signing_key, public_key_pem
from tests.harness import behaviour_upstream, gateway_client

pytestmark = pytest.mark.anyio


def audit_settings(tmp_path: Path, **extra: object) -> GatewaySettings:
    audit = AuditSettings(
        path=tmp_path / "audit.db", signing_key_path=tmp_path / "keys" / "audit.pem", **extra
    )
    return GatewaySettings(audit=audit)


def entries(db: Path) -> list[tuple[str, dict[str, object]]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, record FROM entries ORDER BY seq").fetchall()
    return [(kind, json.loads(record)) for kind, record in rows]


def intact(tmp_path: Path) -> bool:
    key = load_signing_key(tmp_path / "keys" / "audit.pem")
    report = verify(tmp_path / "audit.db", public_key_pem(key))
    return report.ok


async def test_allowed_refused_and_unknown_calls_each_leave_a_decision_entry(tmp_path: Path) -> None:
    settings = audit_settings(tmp_path)
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        ok = await client.call_tool("beh__echo", {"text": "hi"})
        bad = await client.call_tool("beh__echo", {"text": 1})
        with pytest.raises(MCPError):
            await client.call_tool("beh__missing", {})
    assert isinstance(ok, types.CallToolResult) and isinstance(bad, types.CallToolResult)
    log = entries(tmp_path / "audit.db")
    decisions = [r for kind, r in log if kind == "decision"]
    outcomes = [r for kind, r in log if kind == "outcome"]
    assert [d["decision"] for d in decisions] == ["ALLOW", "BLOCK", "BLOCK"]
    assert [d["rules"] for d in decisions] == [[], ["input-schema"], ["unknown-tool"]]
    assert decisions[0]["principal"]["user"] == "local"  # type: ignore[index]
    assert decisions[0]["arguments"] == {"text": "hi"} and len(str(decisions[0]["args_digest"])) == 64
    assert len(outcomes) == 1 and outcomes[0]["tool"] == "beh__echo"
    assert ok.meta is not None and bad.meta is not None
    assert ok.meta["mcp-guard/decision"]["audit_id"] and bad.meta["mcp-guard/decision"]["audit_id"]
    assert intact(tmp_path)


async def test_a_call_is_refused_and_not_forwarded_when_the_audit_log_cannot_be_written(
    tmp_path: Path,
) -> None:
    settings = audit_settings(tmp_path, busy_timeout_ms=50)
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        await client.call_tool("beh__echo", {"text": "warm"})
        locker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            result = await client.call_tool("beh__record", {"id": "must-not-run"})
        finally:
            locker.execute("ROLLBACK")
            locker.close()
    assert isinstance(result, types.CallToolResult) and result.is_error
    assert result.meta is not None and result.meta["mcp-guard/decision"]["rules"] == ["audit-unavailable"]
    assert not (tmp_path / "forwarded.txt").exists()


async def test_with_overlapped_durability_no_result_leaves_before_its_decision_is_on_disk(
    tmp_path: Path,
) -> None:
    settings = audit_settings(tmp_path, synchronous="OVERLAPPED")
    wal = tmp_path / "audit.db-wal"
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        ok = await client.call_tool("beh__record", {"id": "synced"})
        wal.rename(tmp_path / "moved-wal")  # from now on no entry can be made durable
        withheld = await client.call_tool("beh__record", {"id": "forwarded-but-withheld"})
        refused = await client.call_tool("beh__record", {"id": "must-not-run"})
    assert isinstance(ok, types.CallToolResult) and not ok.is_error
    assert isinstance(withheld, types.CallToolResult) and withheld.is_error
    assert (
        withheld.meta is not None
        and withheld.meta["mcp-guard/decision"]["upstream_error"] == "audit-unavailable"
    )
    text = withheld.content[0]
    assert (
        isinstance(text, types.TextContent)
        and "result is withheld" in text.text
        and "cannot fsync" in text.text
    )
    assert isinstance(refused, types.CallToolResult) and refused.is_error
    assert refused.meta is not None and refused.meta["mcp-guard/decision"]["rules"] == ["audit-unavailable"]
    assert (tmp_path / "forwarded.txt").read_text().split() == ["synced", "forwarded-but-withheld"]


async def test_arguments_can_be_kept_out_of_the_log_leaving_only_their_digest(tmp_path: Path) -> None:
    settings = audit_settings(tmp_path, arguments="digest")
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        await client.call_tool("beh__echo", {"text": "secret stuff"})
    decision = next(r for kind, r in entries(tmp_path / "audit.db") if kind == "decision")
    assert "arguments" not in decision and "secret stuff" not in json.dumps(decision)


async def test_after_a_sigkill_under_load_the_chain_verifies_and_every_forwarded_call_was_audited(
    tmp_path: Path,
) -> None:
    behaviour_upstream(tmp_path)
    (tmp_path / "mcp-guard.yaml").write_text(
        "local_principal: {user: tester}\naudit:\n  path: audit.db\n  signing_key_path: keys/audit.pem\n"
        "  arguments: full\n",
        encoding="utf-8",
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_guard", "serve", "--upstreams", str(tmp_path / "upstreams.yaml")],
        cwd=str(tmp_path),
    )
    killed = False
    with pytest.raises(BaseException):  # noqa: B017 - the connection dies with the gateway, by design
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            pid = _gateway_pid(tmp_path)

            async def caller(worker: int) -> None:
                for i in range(1000):
                    await client.call_tool("beh__record", {"id": f"w{worker}-{i}"})

            async with anyio.create_task_group() as tg:
                for worker in range(8):
                    tg.start_soon(caller, worker)
                with anyio.fail_after(60):  # under load: yield to the callers until 40 calls went through
                    while _forwarded_count(tmp_path) < 40:
                        await anyio.lowlevel.checkpoint()
                os.kill(pid, signal.SIGKILL)
                killed = True
    assert killed
    forwarded = set((tmp_path / "forwarded.txt").read_text().split())
    audited = {
        r["arguments"]["id"]
        for kind, r in entries(tmp_path / "audit.db")  # type: ignore[index]
        if kind == "decision" and r["tool"] == "beh__record"
    }
    assert len(forwarded) >= 40
    assert forwarded <= audited
    assert intact(tmp_path)


def _forwarded_count(tmp_path: Path) -> int:
    path = tmp_path / "forwarded.txt"
    return len(path.read_text().split()) if path.exists() else 0


def _gateway_pid(tmp_path: Path) -> int:
    """The gateway process: the one holding the audit database open under tmp_path."""
    out = subprocess.run(
        ["pgrep", "-f", f"mcp_guard serve --upstreams {tmp_path}"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[0])


async def test_findings_in_arguments_are_stored_as_typed_placeholders(tmp_path: Path) -> None:
    settings = audit_settings(tmp_path)
    async with gateway_client(behaviour_upstream(tmp_path), settings) as (_, client):
        await client.call_tool("beh__echo", {"text": "card 4111 1111 1111 1111 for Jane"})
    decision = next(r for kind, r in entries(tmp_path / "audit.db") if kind == "decision")
    stored = json.dumps(decision["arguments"])
    assert "4111 1111 1111 1111" not in stored and "[REDACTED:CREDIT_CARD]" in stored
    assert [f["type"] for f in decision["findings"]] == ["CREDIT_CARD"]  # type: ignore[index, union-attr]
