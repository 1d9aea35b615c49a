"""One session: bounded recent calls and taint, windowed counts, argument shapes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from mcp_guard.decision import Decision
from mcp_guard.findings import Severity
from mcp_guard.policy import SessionHistory
from mcp_guard.sessions import CallRecord, argument_shape, shape_paths
from tests.risk.helpers import ALICE, MONDAY_10, FakeClock, finding, sessions


def _rec(tool: str, seconds_ago: float, *actions: str, decision: Decision | None = None) -> CallRecord:
    return CallRecord(
        tool, MONDAY_10 - timedelta(seconds=seconds_ago), actions=frozenset(actions), decision=decision
    )


def test_the_ring_buffer_keeps_only_the_last_calls() -> None:
    session = sessions(max_calls=3).get("s", ALICE)
    for n in range(5):
        session.record_call(_rec(f"t__{n}", 10 - n))
    assert [r.tool for r in session.recent()] == ["t__2", "t__3", "t__4"]
    assert [r.tool for r in session.recent(2)] == ["t__3", "t__4"]
    assert session.recent(0) == []
    assert len(session) == 3
    assert session.counters["calls"] == 5


def test_records_keep_wall_time_and_the_monotonic_reading_of_the_store_clock() -> None:
    clock = FakeClock(start=42.0)
    session = sessions(clock).get("s", ALICE)
    stored = session.record_call(_rec("t__a", 0))
    assert stored.mono == 42.0
    assert stored.at == MONDAY_10


def test_a_record_stamped_with_the_store_clock_is_kept_as_it_is_by_every_session_of_the_call() -> None:
    clock = FakeClock(start=42.0)
    store = sessions(clock)
    session, _, principal_session = store.for_call("s", ALICE)
    record = replace(_rec("t__a", 0), mono=store.now())
    clock.advance(5.0)
    assert session.record_call(record) is record
    assert principal_session.record_call(record) is record
    assert session.recent() == principal_session.recent() == [record]
    assert record.mono == 42.0


def test_count_counts_matching_calls_inside_the_window() -> None:
    session = sessions().get("s", ALICE)
    for seconds_ago in (120, 59, 30, 0):
        session.record_call(_rec("mail__send_email", seconds_ago))
    session.record_call(_rec("crm__get", 5))
    assert session.count("mail__*", 60, MONDAY_10) == 3
    assert session.count("*", 60, MONDAY_10) == 4
    assert session.count("mail__*", 60, MONDAY_10 - timedelta(seconds=1)) == 2  # later calls excluded
    assert session.count("bank__*", 600, MONDAY_10) == 0


def test_a_session_satisfies_the_policy_engines_session_history_protocol() -> None:
    history: SessionHistory = sessions().get("s", ALICE)
    assert history.count("*", 60, MONDAY_10) == 0


def test_tagged_counts_separate_attempts_forwarded_calls_and_blocks() -> None:
    session = sessions().get("s", ALICE)
    session.record_call(_rec("fs__rm", 3, "delete", decision=Decision.BLOCK))
    session.record_call(_rec("fs__rm", 2, "delete", decision=Decision.APPROVAL_REQUIRED))
    session.record_call(_rec("fs__rm", 1, "delete", decision=Decision.WARN))
    now = MONDAY_10.timestamp()
    assert session.count_tagged("delete", 60, now) == 3
    assert session.count_tagged("delete:forwarded", 60, now) == 1
    assert session.count_tagged("blocked", 60, now) == 1
    assert session.decisions(Decision.BLOCK) == 1


def test_taint_is_remembered_per_category_within_a_window_and_capped() -> None:
    session = sessions(max_taints=2).get("s", ALICE)
    assert session.record_result_findings("x__y", [], MONDAY_10) is None
    session.record_result_findings("crm__get", [finding("US_SSN", "pii", Severity.HIGH)], MONDAY_10)
    session.record_result_findings(
        "vault__get",
        [finding("EMAIL", "pii", Severity.LOW), finding("AWS_SECRET_KEY", "secret", Severity.CRITICAL)],
        MONDAY_10,
    )
    latest = session.tainted({"secret"}, 60, MONDAY_10)
    assert [t.tool for t in latest] == ["vault__get"]
    assert latest[0].severity is Severity.CRITICAL
    assert latest[0].types == frozenset({"EMAIL", "AWS_SECRET_KEY"})
    assert [t.tool for t in session.tainted({"pii"}, 60, MONDAY_10)] == ["vault__get", "crm__get"]
    assert session.tainted({"pii"}, 60, MONDAY_10 + timedelta(minutes=2)) == []
    assert session.tainted_at({"pii"}, 60, MONDAY_10.timestamp()) == session.tainted({"pii"}, 60, MONDAY_10)
    session.record_result_findings("c__d", [finding("PHONE", "pii")], MONDAY_10)
    assert [t.tool for t in session.tainted({"pii", "secret"}, 60, MONDAY_10)] == ["c__d", "vault__get"]


def test_argument_shape_ignores_values_but_not_keys_or_types() -> None:
    a = argument_shape({"to": "a@x", "cc": ["b@y"], "opts": {"n": 1}})
    assert a == argument_shape({"opts": {"n": 99}, "cc": ["z@q", "w@e"], "to": "c@d"})
    assert a != argument_shape({"to": "a@x", "cc": ["b@y"], "opts": {"n": "1"}})
    assert a != argument_shape({"to": "a@x", "cc": ["b@y"]})
    assert argument_shape({}) == ""
    assert shape_paths({"to": "a", "cc": ["b"], "n": None, "ok": True}) == (
        "cc[]:str",
        "n:null",
        "ok:bool",
        "to:str",
    )


def test_argument_shape_is_bounded_on_hostile_payloads() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(100):
        child: dict[str, object] = {}
        node["k"] = child
        node = child
    wide = {f"k{n}": n for n in range(10_000)}
    assert len(shape_paths(deep)) == 1
    assert len(shape_paths(wide)) == 128
