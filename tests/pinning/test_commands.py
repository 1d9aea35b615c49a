"""The operator's ``mcp-guard tools`` commands, against the database a running gateway uses."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from mcp_guard.approvals.store import ApprovalStore
from mcp_guard.pinning import QuarantineReason
from tests.pinning.tools import POISONED_DESCRIPTION, adder, names, opened, run_cli, weather

pytestmark = pytest.mark.anyio


async def cli(*argv: str) -> int:
    """Run the CLI in a worker thread, as a separate process would (it runs its own event loop)."""
    return await anyio.to_thread.run_sync(run_cli, list(argv))


async def test_an_accept_by_the_cli_is_allowed_on_the_next_review_after_refresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
        held = await gateway.review("wx", [weather("Returns the weather and a forecast.")])
        assert held.allowed == ()
        assert await cli("tools", "accept", "wx", "get_weather", "--db", str(db), "--as-user", "alice") == 0
        refreshed = await gateway.refresh()
        review = await gateway.review("wx", [weather("Returns the weather and a forecast.")])
        again = await gateway.refresh()
    assert refreshed.upstreams == frozenset({"wx"})
    assert [(e["event"], e["by"], e["reason"]) for e in refreshed.events] == [
        ("accepted", "alice", "changed")
    ]
    assert names(review.allowed) == ["get_weather"]
    assert (again.upstreams, again.events) == (frozenset(), [])
    assert "accepted wx/get_weather" in capsys.readouterr().out


async def test_refresh_reports_nothing_when_nothing_changed(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as gateway:
        await gateway.review("wx", [weather()])
        refreshed = await gateway.refresh()
    assert (refreshed.upstreams, refreshed.events) == (frozenset(), [])


async def test_tools_list_shows_pinned_and_quarantined_tools_with_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
        await gateway.review("wx", [weather("Changed.")])
        await gateway.review("math", [adder(POISONED_DESCRIPTION)])
    assert await cli("tools", "list", "--db", str(db)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["STATE", "TOOL", "REASON", "FINGERPRINT", "SINCE", "BY"]
    assert lines[1].split()[:3] == ["quarantined", "math/add", "poisoned"]
    assert lines[2].split()[:3] == ["quarantined", "wx/get_weather", "changed"]
    assert "2 tool(s) quarantined" in lines[-1]


async def test_tools_list_json_has_one_object_per_tool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
    assert await cli("tools", "list", "--db", str(db), "--json") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["state"] == "pinned"


async def test_tools_diff_prints_the_description_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
        await gateway.review("wx", [weather("Returns the weather for a town.")])
    assert await cli("tools", "diff", "wx", "get_weather", "--db", str(db)) == 0
    out = capsys.readouterr().out
    assert '+  "description": "Returns the weather for a town.",' in out
    assert "[-city.-]{+town.+}" in out


async def test_accepting_a_poisoned_tool_needs_force_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("math", [adder(POISONED_DESCRIPTION)])
        refused = await cli("tools", "accept", "math", "add", "--db", str(db))
        refused_err = capsys.readouterr().err
        forced = await cli("tools", "accept", "math", "add", "--db", str(db), "--force", "--as-user", "bob")
        forced_err = capsys.readouterr().err
        await gateway.refresh()
        review = await gateway.review("math", [adder(POISONED_DESCRIPTION)])
    assert refused == 1 and "needs --force" in refused_err
    assert forced == 0 and "with --force despite poisoning findings" in forced_err
    assert names(review.allowed) == ["add"]


async def test_accept_refuses_when_the_pending_definition_changed_since_the_diff(tmp_path: Path) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
        await gateway.review("wx", [weather("Changed.")])
        code = await cli("tools", "accept", "wx", "get_weather", "--db", str(db), "--fingerprint", "0000")
        review = await gateway.review("wx", [weather("Changed.")])
    assert code == 1
    assert review.allowed == ()


async def test_accept_with_nothing_pending_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
    assert await cli("tools", "accept", "wx", "get_weather", "--db", str(db)) == 1


async def test_a_rejected_tool_stays_hidden_and_is_listed_as_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db, mode="require_approval") as gateway:
        await gateway.review("wx", [weather()])
        assert await cli("tools", "reject", "wx", "get_weather", "--db", str(db), "--as-user", "carol") == 0
        refreshed = await gateway.refresh()
        review = await gateway.review("wx", [weather()])
    assert [e["event"] for e in refreshed.events] == ["rejected"]
    assert review.allowed == ()
    assert [(q.reason, q.rejected) for q in review.quarantined] == [(QuarantineReason.NEW, True)]
    capsys.readouterr()
    assert await cli("tools", "list", "--db", str(db)) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["rejected", "wx/get_weather", "new"]


async def test_a_missing_database_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("tools", "list", "--db", str(tmp_path / "nope.db")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()


async def test_two_gateways_both_see_an_accept_but_only_one_gets_its_audit_record(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as first, opened(db) as second:
        await first.review("wx", [weather()])
        await first.review("wx", [weather("Changed.")])
        await second.review("wx", [weather("Changed.")])
        assert await cli("tools", "accept", "wx", "get_weather", "--db", str(db)) == 0
        one, two = await first.refresh(), await second.refresh()
    assert one.upstreams == two.upstreams == frozenset({"wx"})
    assert [e["event"] for e in one.events + two.events] == ["accepted"]


@pytest.mark.parametrize("foreign", ["customers", "approvals"])
async def test_a_database_that_is_not_a_pin_database_is_refused_and_left_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], foreign: str
) -> None:
    db = tmp_path / "other.db"
    if foreign == "approvals":  # a sibling state file: same schema version, other tables
        async with ApprovalStore.open(db):
            pass
    else:
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            conn.commit()
    before = _tables_and_mode(db)
    assert await cli("tools", "list", "--db", str(db)) == 2
    assert f"{db} is not an mcp-guard pin database (tables " in capsys.readouterr().err
    assert _tables_and_mode(db) == before


def _tables_and_mode(db: Path) -> tuple[list[str], str]:
    with closing(sqlite3.connect(db)) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return tables, conn.execute("PRAGMA journal_mode").fetchone()[0]


class AuditDown(Exception):
    """The audit log refused an append."""


async def test_an_operator_decision_whose_audit_record_cannot_be_written_is_handed_out_again(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pins.db"
    audited: list[dict[str, object]] = []

    async def audit_down(record: dict[str, object]) -> None:
        raise AuditDown

    async def audit_up(record: dict[str, object]) -> None:
        audited.append(record)

    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
        await gateway.review("wx", [weather("Returns the weather and a forecast.")])
        assert await cli("tools", "accept", "wx", "get_weather", "--db", str(db), "--as-user", "alice") == 0
        with pytest.raises(AuditDown):
            await gateway.refresh(deliver=audit_down)
        refreshed = await gateway.refresh(deliver=audit_up)
        again = await gateway.refresh(deliver=audit_up)
    assert refreshed.upstreams == frozenset({"wx"})  # the accepted tool is exposed only now
    assert [(e["event"], e["by"]) for e in audited] == [("accepted", "alice")]
    assert refreshed.events == audited
    assert (again.upstreams, again.events) == (frozenset(), [])


async def test_a_review_whose_audit_records_cannot_be_written_pins_nothing_and_plans_them_again(
    tmp_path: Path,
) -> None:
    audited: list[dict[str, object]] = []

    async def audit_down(record: dict[str, object]) -> None:
        raise AuditDown

    async def audit_up(record: dict[str, object]) -> None:
        audited.append(record)

    async with opened(tmp_path / "pins.db") as gateway:
        with pytest.raises(AuditDown):
            await gateway.review("wx", [weather()], deliver=audit_down)
        first = await gateway.review("wx", [weather()], deliver=audit_up)
        again = await gateway.review("wx", [weather()], deliver=audit_up)
    assert [e["event"] for e in audited] == ["pinned"]  # planned again after the failure, once
    assert first.events == audited and names(first.allowed) == ["get_weather"]
    assert again.events == []


@pytest.mark.parametrize("prefix", ["", "  ", "not-hex"])
async def test_accept_refuses_a_fingerprint_prefix_that_could_not_name_a_definition(
    tmp_path: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "pins.db"
    async with opened(db) as gateway:
        await gateway.review("wx", [weather()])
        await gateway.review("wx", [weather("Returns the weather and a forecast.")])
    with pytest.raises(SystemExit) as exited:  # an empty "$FP" must not skip the check
        await cli("tools", "accept", "wx", "get_weather", "--db", str(db), "--fingerprint", prefix)
    assert exited.value.code == 2
    assert "argument --fingerprint: expected hexadecimal digits of the fingerprint" in capsys.readouterr().err
    async with opened(db) as gateway:
        record = await gateway.record("wx", "get_weather")
    assert record is not None and record.pending is not None  # nothing was accepted
