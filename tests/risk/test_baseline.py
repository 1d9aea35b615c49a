"""The behavioural baseline: muted during warm-up, raised by the unusual, learned only from observed calls."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from mcp_guard.principal import Principal
from mcp_guard.risk import BaselineConfig, BaselineStore, RiskConfig, hour_of_week, open_baseline_store
from mcp_guard.sessions import CallRecord
from tests.harness import logged_errors, rename_table
from tests.risk.helpers import ALICE, BOB, MONDAY_10, SUNDAY_03, call, scorer, sessions, warm_up

pytestmark = pytest.mark.anyio


def test_hour_of_week_counts_from_monday_midnight_utc() -> None:
    assert hour_of_week(MONDAY_10.timestamp()) == 10
    assert hour_of_week(SUNDAY_03.timestamp()) == 6 * 24 + 3


def test_during_warm_up_the_behaviour_factor_is_muted() -> None:
    baselines = BaselineStore()
    warm_up(baselines, calls=49)
    a = scorer(baselines=baselines).score(call("shell__run", {"execute"}))
    assert a.factors["behaviour"].score == 0
    assert a.factors["behaviour"].reasons == ("baseline warming up (49/50 calls): muted",)


def test_after_warm_up_a_tool_the_agent_never_used_raises_the_behaviour_factor() -> None:
    baselines = BaselineStore()
    warm_up(baselines, calls=50)
    s = scorer(baselines=baselines)
    usual = s.score(call("crm__get_customer"))
    novel = s.score(call("shell__run", {"read"}))
    assert usual.factors["behaviour"].score == 0
    assert novel.factors["behaviour"].score == 70
    assert novel.factors["behaviour"].reasons == ("tool never used by this agent in 50 calls",)
    assert novel.score > usual.score


def test_an_argument_shape_never_seen_for_a_known_tool_raises_the_behaviour_factor() -> None:
    baselines = BaselineStore()
    warm_up(baselines, arguments={"id": "c-1"})
    s = scorer(baselines=baselines)
    same_shape = s.score(call(arguments={"id": "c-999"}))
    new_shape = s.score(call(arguments={"id": "c-1", "export": {"all": True}}))
    assert same_shape.factors["behaviour"].score == 0
    assert new_shape.factors["behaviour"].score == 40
    assert new_shape.factors["behaviour"].reasons == ("argument shape never seen for this tool",)


def test_after_warm_up_an_hour_the_agent_never_works_raises_the_temporal_factor() -> None:
    baselines = BaselineStore()
    warm_up(baselines)
    s = scorer(baselines=baselines)
    usual = s.score(call(now=MONDAY_10))
    unusual = s.score(call(now=SUNDAY_03))
    assert usual.factors["temporal"].score == 0
    assert unusual.factors["temporal"].score == 80
    assert "no call by this agent within an hour of Sun 03:00 UTC" in unusual.factors["temporal"].reasons[0]


def test_the_baseline_replaces_business_hours_after_warm_up() -> None:
    baselines = BaselineStore()
    night_owl_start = SUNDAY_03 - timedelta(days=7)
    for n in range(60):
        baselines.observe(ALICE, "crm__get_customer", night_owl_start + timedelta(minutes=n), arguments={})
    s = scorer(baselines=baselines)
    assert s.score(call(now=SUNDAY_03)).factors["temporal"].score == 0
    assert s.score(call(now=MONDAY_10)).factors["temporal"].score == 80


def test_a_call_rate_far_above_the_agents_typical_rate_raises_the_behaviour_factor() -> None:
    baselines = BaselineStore()
    warm_up(baselines)  # one call every 12 minutes
    s = scorer(baselines=baselines)
    store = sessions()
    calm, burst = store.get("calm", ALICE), store.get("burst", ALICE)
    for n in range(12):
        burst.record_call(
            CallRecord("crm__get_customer", MONDAY_10 - timedelta(seconds=n), actions=frozenset({"read"}))
        )
    calm_score = s.score(call(session=calm)).factors["behaviour"]
    burst_score = s.score(call(session=burst)).factors["behaviour"]
    assert calm_score.score == 0
    assert burst_score.score > 50
    assert "13 calls in 60 s" in burst_score.reasons[0]


def test_scoring_never_teaches_the_baseline() -> None:
    baselines = BaselineStore()
    warm_up(baselines)
    s = scorer(baselines=baselines)
    for _ in range(100):
        s.score(call("shell__run", {"execute"}))
    assert s.score(call("shell__run", {"execute"})).factors["behaviour"].score == 70
    assert baselines.get(ALICE) is not None
    assert baselines.get(ALICE).tool_count("shell__run") == 0  # type: ignore[union-attr]


def test_only_observed_calls_are_learned() -> None:
    baselines = BaselineStore()
    warm_up(baselines)
    s = scorer(baselines=baselines)
    for n in range(10):
        baselines.observe(ALICE, "shell__run", MONDAY_10 - timedelta(hours=n), arguments={"id": "x"})
    assert s.score(call("shell__run", {"execute"})).factors["behaviour"].score == 0


def test_baselines_are_learned_per_principal_by_default_and_per_agent_when_configured() -> None:
    per_principal = BaselineStore()
    warm_up(per_principal, ALICE)
    assert per_principal.get(BOB) is None
    per_agent = BaselineStore(BaselineConfig(key="agent"))
    warm_up(per_agent, ALICE)
    assert per_agent.get(BOB) is per_agent.get(ALICE)
    assert per_agent.get(Principal(user="carol")) is None


def test_per_agent_baselines_of_tenants_and_agents_with_bars_stay_apart() -> None:
    per_agent = BaselineStore(BaselineConfig(key="agent"))
    warm_up(per_agent, Principal(user="u", tenant="a|agent:b", agent="c"))
    assert per_agent.get(Principal(user="v", tenant="a", agent="b|agent:c")) is None


def test_an_ordinary_per_agent_baseline_keeps_its_stored_key() -> None:
    per_agent = BaselineStore(BaselineConfig(key="agent"))
    acme_bot = Principal(user="u", tenant="acme", agent="invoice-bot")
    assert per_agent.key_for(acme_bot) == "acme|agent:invoice-bot"
    assert per_agent.key_for(Principal(user="u", agent="invoice-bot")) == "|agent:invoice-bot"


def test_baseline_memory_is_bounded_per_agent() -> None:
    baselines = BaselineStore(BaselineConfig(max_tools=3, max_shapes_per_tool=2))
    for n in range(10):
        baselines.observe(ALICE, f"t__{n}", MONDAY_10, arguments={f"k{n}": 1})
        baselines.observe(ALICE, "t__0", MONDAY_10, arguments={f"k{n}": 1})
    b = baselines.get(ALICE)
    assert b is not None
    assert b.calls == 20
    assert len(b.tools) == 3
    assert len(b.shapes["t__0"]) == 2


async def test_baselines_survive_a_reload_from_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "baselines.sqlite3"
    first = BaselineStore(path=path)
    assert await first.load() == 0
    warm_up(first)
    assert first.pending == 1
    assert await first.flush() == 1
    assert first.pending == 0
    await first.aclose()

    second = BaselineStore(path=path)
    assert await second.load() == 1
    s = scorer(RiskConfig(), second)
    assert s.score(call("crm__get_customer")).factors["behaviour"].score == 0
    assert s.score(call("shell__run", {"execute"})).factors["behaviour"].score == 70
    assert s.score(call(now=SUNDAY_03)).factors["temporal"].score == 80
    await second.aclose()


async def test_open_baseline_store_writes_the_last_changes_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    async with open_baseline_store(path, BaselineConfig(flush_interval_s=0)) as store:
        store.observe(ALICE, "crm__get_customer", MONDAY_10, arguments={"id": 1})
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key FROM risk_baselines").fetchall()
    assert rows == [(ALICE.key,)]


async def test_a_failed_baseline_flush_is_logged_and_retried_while_the_store_keeps_learning(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.sqlite3"
    with logged_errors("mcp_guard.risk.baseline_store") as errors, anyio.fail_after(10):
        async with open_baseline_store(path, BaselineConfig(flush_interval_s=0.001)) as store:
            rename_table(path, "risk_baselines", "moved_away")  # every write now fails
            store.observe(ALICE, "crm__get_customer", MONDAY_10, arguments={"id": 1})
            await errors.wait_for(2)  # failed, and the flusher tried again
            store.observe(BOB, "crm__get_customer", MONDAY_10, arguments={"id": 1})
            rename_table(path, "moved_away", "risk_baselines")
    assert "writing 1 baseline(s) to" in errors.messages[0] and "no such table" in errors.messages[0]
    with closing(sqlite3.connect(path)) as db:
        keys = {key for (key,) in db.execute("SELECT key FROM risk_baselines")}
    assert keys == {ALICE.key, BOB.key}


async def test_an_unreadable_stored_baseline_is_skipped_and_named(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    async with open_baseline_store(path) as store:
        warm_up(store)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO risk_baselines VALUES ('mallory|x', '{\"v\": 99}', 0)")
    reloaded = BaselineStore(path=path)
    assert await reloaded.load() == 1
    assert reloaded.skipped == ["mallory|x"]
    await reloaded.aclose()


async def test_a_memory_only_store_loads_and_flushes_nothing() -> None:
    store = BaselineStore()
    warm_up(store)
    assert await store.load() == 0
    assert await store.flush() == 0
