"""The session store: principal binding, LRU bound, idle expiry, workflow grouping."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mcp_guard.principal import Principal
from mcp_guard.sessions import SessionConfig, SessionMismatch, workflow_id
from tests.risk.helpers import ALICE, BOB, FakeClock, sessions

CAROL = Principal(user="carol", agent="invoice-bot")


def test_the_same_id_and_principal_get_the_same_session() -> None:
    store = sessions()
    assert store.get("s1", ALICE) is store.get("s1", ALICE)
    assert len(store) == 1


def test_a_session_is_bound_to_the_principal_that_created_it() -> None:
    store = sessions()
    store.get("s1", ALICE)
    with pytest.raises(SessionMismatch) as caught:
        store.get("s1", BOB)
    assert (
        str(caught.value) == "session 's1' is bound to principal 'alice|invoice-bot', not 'bob|invoice-bot'"
    )
    assert caught.value.session_id == "s1"


def test_the_least_recently_used_session_is_evicted_when_the_store_is_full() -> None:
    clock = FakeClock()
    store = sessions(clock, max_sessions=2)
    first = store.get("a", ALICE)
    store.get("b", ALICE)
    clock.advance(1)
    assert store.get("a", ALICE) is first  # "a" is now the most recent
    store.get("c", ALICE)
    assert len(store) == 2
    assert store.evicted == 1
    assert store.peek("b") is None
    assert store.peek("a") is first


def test_a_flood_of_connections_evicts_the_flooders_own_sessions_never_another_principals() -> None:
    clock = FakeClock()
    store = sessions(clock, max_sessions=3)
    alices_connection, _, alices = store.for_call("alice-1", ALICE)
    for i in range(10):  # Bob opens connection after connection
        clock.advance(1)
        store.for_call(f"bob-{i}", BOB)
    assert store.peek("alice-1") is alices_connection  # her connection's history stays...
    assert store.of_principal(ALICE) is alices  # ...and so does her principal's session
    assert [store.peek(f"bob-{i}") is not None for i in range(10)] == [False] * 8 + [True] * 2
    assert store.evicted == 8


def test_a_flood_of_workflow_ids_evicts_the_flooders_own_workflows_never_another_principals() -> None:
    clock = FakeClock()
    store = sessions(clock, max_sessions=3)
    alices = store.workflow("quarterly-close", ALICE)
    store.get("bob-connection", BOB)
    for i in range(10):  # a fresh workflow id for every call
        clock.advance(1)
        store.for_call("bob-connection", BOB, {"mcp-guard/workflow": f"run-{i}"})
    assert store.workflow("quarterly-close", ALICE) is alices
    assert store.held_by(BOB) == 2


def test_a_principal_past_its_own_bound_loses_its_least_recently_used_session_first() -> None:
    clock = FakeClock()
    store = sessions(clock, max_sessions=100, max_sessions_per_principal=2)
    first = store.get("bob-1", BOB)
    clock.advance(1)
    store.get("bob-2", BOB)
    clock.advance(1)
    assert store.get("bob-1", BOB) is first  # "bob-2" is now Bob's least recently used
    store.get("bob-3", BOB)
    assert (store.peek("bob-1"), store.peek("bob-2")) == (first, None)
    assert store.held_by(BOB) == 2
    assert store.evicted == 1


def test_a_full_store_evicts_from_the_principal_holding_the_most_sessions() -> None:
    clock = FakeClock()
    store = sessions(clock, max_sessions=4)
    store.get("alice-1", ALICE)
    for i in range(3):
        clock.advance(1)
        store.get(f"bob-{i}", BOB)
    clock.advance(1)
    store.get("carol-1", CAROL)  # the store is full: Bob, holding the most, loses his oldest
    assert store.peek("alice-1") is not None
    assert store.peek("bob-0") is None
    assert (store.held_by(ALICE), store.held_by(BOB), store.held_by(CAROL)) == (1, 2, 1)


def test_when_principals_hold_as_many_sessions_the_oldest_of_theirs_is_evicted() -> None:
    clock = FakeClock()
    store = sessions(clock, max_sessions=2)
    store.get("alice-1", ALICE)
    clock.advance(1)
    store.get("bob-1", BOB)
    clock.advance(1)
    store.get("carol-1", CAROL)  # more principals than the store holds: the oldest goes
    assert [store.peek(s) is not None for s in ("alice-1", "bob-1", "carol-1")] == [False, True, True]


def test_a_forgotten_session_no_longer_counts_against_its_principal() -> None:
    clock = FakeClock()
    store = sessions(clock, idle_ttl_s=60, max_sessions_per_principal=2)
    store.get("bob-1", BOB)
    store.workflow("run", BOB)
    assert store.drop("bob-1")
    assert store.held_by(BOB) == 1
    clock.advance(61)
    assert store.expire() == 1  # the workflow
    assert store.held_by(BOB) == 0


def test_an_idle_session_expires_and_a_new_one_starts_in_its_place() -> None:
    clock = FakeClock()
    store = sessions(clock, idle_ttl_s=60)
    old = store.get("s1", ALICE)
    clock.advance(61)
    assert store.peek("s1") is None
    fresh = store.get("s1", BOB)  # the expired binding no longer applies
    assert fresh is not old
    assert fresh.principal_key == BOB.key
    assert store.expired == 1


def test_using_a_session_keeps_it_alive() -> None:
    clock = FakeClock()
    store = sessions(clock, idle_ttl_s=60)
    s = store.get("s1", ALICE)
    for _ in range(5):
        clock.advance(50)
        assert store.get("s1", ALICE) is s


def test_expire_sweeps_every_idle_session() -> None:
    clock = FakeClock()
    store = sessions(clock, idle_ttl_s=60)
    store.get("a", ALICE)
    store.get("b", ALICE)
    clock.advance(30)
    store.get("c", ALICE)
    clock.advance(31)
    assert store.expire() == 2
    assert len(store) == 1
    assert store.peek("c") is not None


def test_drop_forgets_a_session() -> None:
    store = sessions()
    store.get("s1", ALICE)
    assert store.drop("s1") is True
    assert store.drop("s1") is False
    assert len(store) == 0


def test_calls_with_the_same_workflow_id_share_a_workflow_session_across_connections() -> None:
    store = sessions()
    meta = {"mcp-guard/workflow": "wf-42"}
    s1, w1, _ = store.for_call("conn-1", ALICE, meta)
    s2, w2, _ = store.for_call("conn-2", ALICE, meta)
    assert s1 is not s2
    assert w1 is not None
    assert w1 is w2
    assert store.for_call("conn-1", ALICE, {})[1] is None


def test_every_connection_and_workflow_of_a_principal_shares_its_principal_session() -> None:
    store = sessions()
    _, _, first = store.for_call("conn-1", ALICE, {"mcp-guard/workflow": "wf-1"})
    _, _, second = store.for_call("conn-2", ALICE, {"mcp-guard/workflow": "wf-2"})
    _, _, third = store.for_call("conn-3", ALICE)
    _, _, bobs = store.for_call("conn-4", BOB)
    assert first is second is third
    assert bobs is not first


def test_workflow_ids_are_namespaced_by_principal() -> None:
    store = sessions()
    mine = store.workflow("wf-42", ALICE)
    theirs = store.workflow("wf-42", BOB)  # no SessionMismatch: a different workflow
    assert mine is not theirs
    assert theirs.principal_key == BOB.key


def test_the_workflow_key_is_configurable_and_odd_values_are_ignored() -> None:
    config = SessionConfig(workflow_meta_keys=("acme/run", "mcp-guard/workflow"), max_workflow_id_length=8)
    assert workflow_id({"acme/run": "r1", "mcp-guard/workflow": "w"}, config) == "r1"
    assert workflow_id({"acme/run": 17}, config) == "17"
    assert workflow_id({"acme/run": True}, config) is None
    assert workflow_id({"acme/run": ""}, config) is None
    assert workflow_id({"acme/run": "x" * 9}, config) is None
    assert workflow_id({"acme/run": {"id": 1}}, config) is None
    assert workflow_id(None, config) is None


def test_session_config_rejects_unknown_keys_and_silly_bounds() -> None:
    with pytest.raises(ValidationError, match="max_session"):
        SessionConfig.model_validate({"max_session": 3})
    with pytest.raises(ValidationError, match="max_calls"):
        SessionConfig(max_calls=0)


def test_a_workflow_id_cannot_reach_into_another_principals_workflow() -> None:
    store = sessions()
    first = Principal(user="alice", agent="bot\x00run")
    second = Principal(user="alice", agent="bot")
    mine = store.workflow("wf", first)
    theirs = store.workflow("run\x00wf", second)  # the old "key\x00workflow" string of `mine`
    assert mine is not theirs
    assert theirs.principal_key == second.key
