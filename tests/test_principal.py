"""Principal keys: one key per principal, and the keys already stored stay valid."""

from __future__ import annotations

import pytest

from mcp_guard.principal import Principal, escape_key_part


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (Principal(user="kim|x"), Principal(user="kim", agent="x|")),
        (Principal(user="a|b", agent="c"), Principal(user="a", agent="b|c")),
        (Principal(user="a%7Cb"), Principal(user="a|b")),
        (Principal(user="a%25"), Principal(user="a%")),
        (Principal(user="kim", tenant="acme"), Principal(user="kim", tenant="globex")),
        (Principal(user="kim", tenant="acme"), Principal(user="kim")),
        (Principal(user="kim", tenant=""), Principal(user="kim")),
        (Principal(user="kim", agent="x", tenant="y"), Principal(user="kim", agent="x|y")),
    ],
)
def test_principals_that_differ_only_in_where_a_bar_falls_or_in_their_tenant_get_different_keys(
    one: Principal, other: Principal
) -> None:
    assert one.key != other.key


@pytest.mark.parametrize(
    ("principal", "key"),
    [
        (Principal(user="alice@example.com", agent="claude-desktop"), "alice@example.com|claude-desktop"),
        (Principal(user="kim"), "kim|"),
        (Principal(user="uid=kim,ou=people", agent="svc:bot/1"), "uid=kim,ou=people|svc:bot/1"),
        (Principal(user="kim|x"), "kim%7Cx|"),
        (Principal(user="kim", agent="x|"), "kim|x%7C"),
        (Principal(user="50%"), "50%25|"),
        (Principal(user="kim", agent="bot", tenant="acme"), "kim|bot|acme"),
        (Principal(user="kim", tenant="a|b"), "kim||a%7Cb"),
    ],
)
def test_a_key_escapes_only_the_bar_and_the_percent_sign(principal: Principal, key: str) -> None:
    assert principal.key == key


def test_escaping_leaves_a_plain_value_as_it_is_and_encodes_each_separator() -> None:
    assert escape_key_part("bot-1") == "bot-1"
    assert escape_key_part("a=b|c%d", "|=") == "a%3Db%7Cc%25d"
    assert escape_key_part("a=b") == "a=b"


def test_a_copy_with_other_fields_gets_the_key_of_its_own_fields() -> None:
    kim = Principal(user="kim", agent="bot")
    assert kim.key == "kim|bot"  # worked out, and kept, before the copies are made
    assert kim.model_copy(update={"tenant": "acme"}).key == "kim|bot|acme"
    assert kim.model_copy(update={"user": "a|b"}, deep=True).key == "a%7Cb|bot"
    assert kim.model_copy().key == "kim|bot" and kim.key == "kim|bot"


def test_a_principal_whose_key_was_read_is_equal_to_one_whose_key_was_not() -> None:
    read = Principal(user="kim", agent="bot")
    assert read.key == "kim|bot"
    fresh = Principal(user="kim", agent="bot")
    assert read == fresh and hash(read) == hash(fresh) and read.model_dump() == fresh.model_dump()


def test_the_audit_record_is_built_once_and_a_copy_gets_the_record_of_its_own_fields() -> None:
    kim = Principal(user="kim", agent="bot", roles=frozenset({"sre", "dev"}))
    record = {"user": "kim", "agent": "bot", "roles": ["dev", "sre"], "teams": [], "tenant": None}
    assert kim.audit_record == record and kim.audit_record is kim.audit_record
    assert kim.model_copy(update={"tenant": "acme"}).audit_record == {**record, "tenant": "acme"}
    assert kim == Principal(user="kim", agent="bot", roles=frozenset({"sre", "dev"}))
