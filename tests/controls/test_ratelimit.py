from __future__ import annotations

import pytest

from mcp_guard.decision import Decision
from tests.controls.controls_support import at, call, controls, who

pytestmark = pytest.mark.anyio

PER_AGENT = {"id": "pay-per-agent", "tools": ["bank__*"], "per": ["agent"], "rate": "10/minute", "burst": 10}


async def test_a_burst_is_allowed_then_the_next_call_is_blocked_with_retry_after() -> None:
    c = controls(limits=[PER_AGENT])
    for _ in range(10):
        assert await c.check(call(), at(0.0)) is None
    verdict = await c.check(call(), at(0.0))
    assert verdict is not None
    assert verdict.decision is Decision.BLOCK
    assert verdict.rules == ("pay-per-agent",)
    assert verdict.details["control"] == "rate_limit"
    assert verdict.details["retry_after"] == pytest.approx(6.0)
    assert "agent bot" in verdict.reason and "10 calls per minute" in verdict.reason


async def test_the_bucket_refills_smoothly_over_time() -> None:
    c = controls(limits=[PER_AGENT])
    for _ in range(10):
        await c.check(call(), at(0.0))
    assert await c.check(call(), at(5.9)) is not None
    assert await c.check(call(), at(6.0)) is None  # one token per 6 s
    assert await c.check(call(), at(6.0)) is not None
    for _ in range(10):  # a full minute later the whole burst is back, no more
        assert await c.check(call(), at(100.0)) is None
    assert await c.check(call(), at(100.0)) is not None


async def test_agent_a_being_limited_does_not_limit_agent_b() -> None:
    c = controls(limits=[PER_AGENT])
    a, b = who(agent="a"), who(agent="b")
    for _ in range(10):
        await c.check(call(principal=a), at(0.0))
    assert await c.check(call(principal=a), at(0.0)) is not None
    assert await c.check(call(principal=b), at(0.0)) is None


async def test_the_same_agent_name_in_another_tenant_has_its_own_counter() -> None:
    c = controls(limits=[{**PER_AGENT, "burst": 1}])
    acme, globex = who(agent="bot", tenant="acme"), who(agent="bot", tenant="globex")
    assert await c.check(call(principal=acme), at(0.0)) is None
    verdict = await c.check(call(principal=acme), at(0.0))
    assert verdict is not None and "agent bot, tenant acme" in verdict.reason
    assert await c.check(call(principal=globex), at(0.0)) is None


async def test_tools_outside_the_glob_are_not_limited() -> None:
    c = controls(limits=[{**PER_AGENT, "burst": 1}])
    await c.check(call("bank__pay"), at(0.0))
    assert await c.check(call("bank__pay"), at(0.0)) is not None
    assert await c.check(call("search__web"), at(0.0)) is None


async def test_a_principal_in_two_teams_is_counted_in_both() -> None:
    c = controls(limits=[{"id": "team", "per": ["team"], "rate": "1/hour"}])
    both = who(teams=frozenset({"red", "blue"}))
    red = who(user="bob", teams=frozenset({"red"}))
    assert await c.check(call(principal=both), at(0.0)) is None
    verdict = await c.check(call(principal=red), at(0.0))
    assert verdict is not None and "team red" in verdict.reason


async def test_combined_dimensions_key_by_each_combination() -> None:
    c = controls(limits=[{"id": "ut", "per": ["user", "tool"], "rate": "1/hour"}])
    assert await c.check(call("bank__pay"), at(0.0)) is None
    assert await c.check(call("bank__refund"), at(0.0)) is None
    assert await c.check(call("bank__pay", who(user="bob")), at(0.0)) is None
    assert await c.check(call("bank__pay"), at(0.0)) is not None


async def test_a_refused_call_takes_no_tokens_from_the_limits_it_passed() -> None:
    c = controls(
        limits=[
            {"id": "wide", "rate": "2/hour"},
            {"id": "narrow", "tools": ["bank__pay"], "rate": "1/hour"},
        ]
    )
    assert await c.check(call("bank__pay"), at(0.0)) is None
    refused = await c.check(call("bank__pay"), at(0.0))
    assert refused is not None and refused.rules == ("narrow",)
    assert await c.check(call("bank__other"), at(0.0)) is None  # "wide" still had its second token


async def test_a_warn_limit_lets_the_call_through_with_a_warning() -> None:
    c = controls(limits=[{"id": "soft", "rate": "1/hour", "decision": "warn"}])
    assert await c.check(call(), at(0.0)) is None
    verdict = await c.check(call(), at(0.0))
    assert verdict is not None and verdict.decision is Decision.WARN


async def test_scope_restricts_a_limit_to_some_principals() -> None:
    c = controls(limits=[{"id": "interns", "rate": "1/hour", "scope": {"roles": ["intern"]}}])
    intern, staff = who(roles=frozenset({"intern"})), who(user="s")
    for p in (intern, staff):
        assert await c.check(call(principal=p), at(0.0)) is None
    assert await c.check(call(principal=intern), at(0.0)) is not None
    assert await c.check(call(principal=staff), at(0.0)) is None


async def test_a_name_with_separators_cannot_share_another_principals_key() -> None:
    c = controls(limits=[{"id": "u", "per": ["user", "agent"], "rate": "1/hour"}])
    assert await c.check(call(principal=who(user="a|agent=b", agent="c")), at(0.0)) is None
    assert await c.check(call(principal=who(user="a", agent="b|agent=c")), at(0.0)) is None


async def test_a_new_token_with_other_teams_is_keyed_by_its_own_teams() -> None:
    c = controls(limits=[{"id": "team", "per": ["team"], "rate": "1/hour"}])
    assert await c.check(call(principal=who(teams=frozenset({"red"}))), at(0.0)) is None
    assert await c.check(call(principal=who(teams=frozenset({"blue"}))), at(0.0)) is None
    assert await c.check(call(principal=who(teams=frozenset({"red"}))), at(0.0)) is not None
