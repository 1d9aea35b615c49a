"""``mcp-guard approvals ...`` on the SQLite file: list, show, approve, reject, verify."""

from __future__ import annotations

import argparse
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_guard.approvals import ApprovalConfig, ApprovalRequest, ApprovalService, ApprovalState
from mcp_guard.approvals.commands import register
from mcp_guard.approvals.store import ApprovalStore
from tests.approvals.helpers import make_context


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mcp-guard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    result: int = args.func(args)
    return result


def files(config: ApprovalConfig) -> list[str]:
    return ["--db", str(config.path), "--key", str(config.signing_key_path)]


def create(config: ApprovalConfig, **spec: Any) -> ApprovalRequest:
    async def main() -> ApprovalRequest:
        # a real clock: the CLI decides at the real current time
        async with ApprovalService.open(config, None) as approvals:
            return await approvals.create(make_context(**spec))

    return anyio.run(main)


def stored(config: ApprovalConfig, request_id: str) -> ApprovalRequest:
    async def main() -> ApprovalRequest | None:
        async with ApprovalStore.open(config.path, create=False) as store:
            return await store.get(request_id)

    found = anyio.run(main)
    assert found is not None
    return found


def test_an_operator_approves_from_the_cli_and_the_decision_verifies(
    config: ApprovalConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = create(config, mode="defer")
    assert run("approvals", "list", *files(config)) == 0
    assert req.id in capsys.readouterr().out
    audit = ["--audit-db", str(tmp_path / "audit.db"), "--audit-key", str(tmp_path / "keys" / "audit.pem")]
    code = run(
        "approvals", "approve", req.id, *files(config), "--as-user", "bob", "--roles", "sre,oncall", *audit
    )
    assert code == 0
    assert f"{req.id} approved by bob" in capsys.readouterr().out
    decided = stored(config, req.id)
    assert decided.state is ApprovalState.APPROVED
    assert decided.decision is not None and decided.decision.via == "cli"
    assert run("approvals", "verify", req.id, *files(config)) == 0
    assert capsys.readouterr().out.startswith("valid: approve by bob")
    assert (tmp_path / "audit.db").exists()


def test_the_cli_applies_the_same_approver_rules(
    config: ApprovalConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    req = create(config)
    no_audit = "--no-audit"
    assert (
        run(
            "approvals",
            "approve",
            req.id,
            *files(config),
            "--as-user",
            "carol",
            "--roles",
            "engineer",
            no_audit,
        )
        == 1
    )
    assert "not an approver" in capsys.readouterr().err
    assert (
        run("approvals", "approve", req.id, *files(config), "--as-user", "alice", "--roles", "sre", no_audit)
        == 1
    )
    assert "may not decide" in capsys.readouterr().err
    assert (
        run(
            "approvals",
            "reject",
            req.id,
            *files(config),
            "--as-user",
            "bob",
            "--roles",
            "sre",
            "--reason",
            "no",
            no_audit,
        )
        == 0
    )
    assert (
        run(
            "approvals",
            "reject",
            req.id,
            *files(config),
            "--as-user",
            "bob",
            "--roles",
            "sre",
            "--reason",
            "again",
            no_audit,
        )
        == 1
    )


def test_show_prints_the_request_as_json_and_verify_fails_for_undecided_or_unknown(
    config: ApprovalConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    req = create(config)
    assert run("approvals", "show", req.id, *files(config)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == req.id and shown["effective_state"] == "pending"
    assert run("approvals", "verify", req.id, *files(config)) == 1
    assert run("approvals", "verify", "nope", *files(config)) == 2
    assert run("approvals", "list", "--db", str(config.path.with_name("missing.db"))) == 2


def test_verify_detects_a_reason_edited_in_the_database(
    config: ApprovalConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    req = create(config)
    assert (
        run(
            "approvals",
            "reject",
            req.id,
            *files(config),
            "--as-user",
            "bob",
            "--roles",
            "sre",
            "--reason",
            "too risky",
            "--no-audit",
        )
        == 0
    )
    with sqlite3.connect(config.path) as conn:
        (text,) = conn.execute("SELECT decision FROM requests WHERE id = ?", (req.id,)).fetchone()
        conn.execute(
            "UPDATE requests SET decision = ? WHERE id = ?", (text.replace("too risky", "fine by me"), req.id)
        )
    capsys.readouterr()
    assert run("approvals", "verify", req.id, *files(config)) == 1
    assert capsys.readouterr().out.startswith("invalid")


@pytest.mark.anyio
async def test_a_held_call_is_released_by_a_decision_made_from_the_cli(config: ApprovalConfig) -> None:
    async with ApprovalService.open(config, None) as approvals:
        req = await approvals.create(make_context())
        outcome = None

        async def waiter() -> None:
            nonlocal outcome
            outcome = await approvals.wait(req.id, timeout_s=30)

        argv = [
            "approvals",
            "approve",
            req.id,
            *files(config),
            "--as-user",
            "bob",
            "--roles",
            "sre",
            "--no-audit",
        ]
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                assert await anyio.to_thread.run_sync(lambda: run(*argv)) == 0
    assert outcome is not None and outcome.state is ApprovalState.APPROVED


def test_list_refuses_a_database_that_is_not_an_approvals_database_and_leaves_it_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "customers.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.commit()
    before = db.read_bytes()
    assert run("approvals", "list", "--db", str(db)) == 2
    assert f"{db} is not an mcp-guard approvals database (tables " in capsys.readouterr().err
    assert db.read_bytes() == before
    assert not db.with_name("customers.db-wal").exists()
