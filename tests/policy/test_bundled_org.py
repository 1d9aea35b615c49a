"""The bundled ``policies/org.yaml`` against the spellings a security tester got past it with."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.decision import Decision
from mcp_guard.policy import PolicySet, load_policy_dir

from .helpers import finding, request, who

EXAMPLES = Path(__file__).resolve().parents[2] / "policies"
DANA = who("dana", roles=["analyst"])


@pytest.fixture(scope="module")
def bundled() -> PolicySet:
    return load_policy_dir(EXAMPLES)


@pytest.mark.parametrize("tool", ["files__list_dir", "files__read_file"])
@pytest.mark.parametrize(
    "path",
    [
        "/etc",
        "/./etc",
        "//etc/passwd",
        "/./etc/passwd",
        "/.//etc/shadow",
        "///root/.ssh/id_rsa",
        "/./root",
        "/./proc",
        "/./proc/self/environ",
        "/./sys/kernel",
        "../../etc/passwd",
        "..\\..\\x",
        "%2e%2e/%2e%2e/etc/passwd",
        "notes/%2E%2E/../secret",
    ],
)
def test_a_path_out_of_the_workspace_is_blocked_however_it_is_spelled(
    bundled: PolicySet, tool: str, path: str
) -> None:
    result = bundled.evaluate(request(tool, DANA, args={"path": path}))
    assert (result.decision, result.verdict.rules) == (Decision.BLOCK, ("block-path-traversal",))


@pytest.mark.parametrize(
    "path",
    ["docs/readme.md", "./notes.txt", "a/.hidden", "my..file", "/etcetera/x", "reports/etc/summary.txt"],
)
def test_an_ordinary_path_is_not_blocked(bundled: PolicySet, path: str) -> None:
    result = bundled.evaluate(request("files__read_file", DANA, args={"path": path}))
    assert (result.decision, result.matched) == (Decision.ALLOW, ())


@pytest.mark.parametrize(
    "sql",
    [
        "WITH x AS (SELECT 1) UPDATE customers SET email = 'gone' WHERE id = 1",
        "WITH x AS (SELECT 1) REPLACE INTO customers (id, name) VALUES (1, 'overwritten')",
        "WITH x AS (SELECT 1) DELETE FROM customers WHERE id = 2",
        "replace/**/into customers (id, name) values (1, 'x')",
        "INSERT OR REPLACE INTO customers (id, name) VALUES (1, 'x')",
        "insert into customers (name) values ('x')",
        "MERGE INTO customers USING staged ON customers.id = staged.id WHEN MATCHED THEN DELETE",
        "Drop TABLE orders",
        "CREATE TRIGGER wipe AFTER INSERT ON orders BEGIN DELETE FROM customers; END",
        "GRANT ALL ON customers TO mallory",
        "REVOKE SELECT ON customers FROM auditor",
        "ATTACH DATABASE '/tmp/copy.db' AS copy",
        "PRAGMA writable_schema = ON",
        "PRAGMA journal_mode(OFF)",
        "VACUUM INTO '/tmp/copy.db'",
        "SELECT load_extension('/tmp/evil.so')",
    ],
)
def test_sql_that_writes_needs_a_dbas_approval(bundled: PolicySet, sql: str) -> None:
    result = bundled.evaluate(request("db__query", DANA, args={"sql": sql}))
    assert (result.decision, result.verdict.rules) == (
        Decision.APPROVAL_REQUIRED,
        ("destructive-sql-approval",),
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders LIMIT 10",
        "WITH recent AS (SELECT * FROM orders) SELECT count(*) FROM recent",
        "SELECT replace(name, 'a', 'b'), updated_at, created_by FROM customers",
        "SELECT * FROM pragma_table_info('customers')",
    ],
)
def test_a_read_only_query_is_allowed(bundled: PolicySet, sql: str) -> None:
    result = bundled.evaluate(request("db__query", DANA, args={"sql": sql}))
    assert (result.decision, result.matched) == (Decision.ALLOW, ())


@pytest.mark.parametrize(
    "to",
    [
        "evil@x.com, ok@example.com",
        "evil@x.com;ok@example.com",
        "evil@x.com ok@example.com",
        "Ok <ok@example.com>, evil@x.com",
        "ok@evil.example.com",
        "ok@example.com.evil.io",
        "a@b@example.com",
    ],
)
def test_personal_data_mailed_anywhere_but_one_internal_address_is_flagged(
    bundled: PolicySet, to: str
) -> None:
    mail = request("mail__send_email", DANA, args={"to": to, "body": "x"}, findings=[finding("PHONE_NUMBER")])
    result = bundled.evaluate(mail)
    assert (result.decision, result.verdict.rules) == (Decision.WARN, ("external-email-with-pii",))


@pytest.mark.parametrize("to", ["ok@example.com", "First.Last+tag@Example.COM"])
def test_personal_data_mailed_to_one_internal_address_is_not_flagged(bundled: PolicySet, to: str) -> None:
    mail = request("mail__send_email", DANA, args={"to": to, "body": "x"}, findings=[finding("PHONE_NUMBER")])
    assert bundled.evaluate(mail).decision == Decision.ALLOW
