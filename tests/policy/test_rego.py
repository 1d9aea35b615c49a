"""Rego policies in the same folder, behind the same decision contract, fail closed."""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcp_guard.decision import Decision
from mcp_guard.errors import ConfigError
from mcp_guard.policy import load_policy_dir, rego_check

from .helpers import MONDAY_NOON, finding, request, who, write

EXAMPLES = Path(__file__).resolve().parents[2] / "policies"

POLICY = """
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW", "rules": [], "reason": "no Rego rule matched"}

decision := {"decision": "BLOCK", "rules": ["rego-no-cards"], "reason": "card numbers stay inside"} if {
	some f in input.findings
	f.type == "CREDIT_CARD"
	input.tool.upstream == "mail"
}

decision := {"decision": "APPROVAL_REQUIRED", "rules": ["rego-big-refund"], "reason": "big refund"} if {
	input.tool.name == "bank__refund"
	big_refund(input.arguments)
	not admin
}

admin if "finance-admin" == input.principal.roles[_]

big_refund(args) if args.amount > 5000

test_small_refunds_pass if not big_refund({"amount": 5})
"""


def test_a_rego_policy_blocks_and_allows_through_the_same_contract(tmp_path: Path) -> None:
    write(tmp_path, "cards.rego", POLICY)
    write(tmp_path, "p.yaml", "rules:\n  - {id: yaml-warn, match: {upstreams: [mail]}, decision: WARN}\n")
    policies = load_policy_dir(tmp_path)
    blocked = policies.evaluate(request("mail__send_email", findings=[finding("CREDIT_CARD")]))
    assert blocked.decision is Decision.BLOCK
    assert blocked.verdict.rules == ("rego-no-cards",)
    assert blocked.verdict.reason == "card numbers stay inside"
    assert blocked.verdict.details["source"] == "rego"
    assert blocked.matched == ("yaml-warn", "rego-no-cards")
    warned = policies.evaluate(request("mail__send_email"))
    assert warned.decision is Decision.WARN
    assert warned.verdict.rules == ("yaml-warn",)
    held = policies.evaluate(request("bank__refund", args={"amount": 9000}))
    assert held.decision is Decision.APPROVAL_REQUIRED
    admin = who(roles=["finance-admin"])
    assert policies.evaluate(request("bank__refund", admin, args={"amount": 9000})).decision is Decision.ALLOW


def refusal(tmp_path: Path, source: str) -> list[str]:
    write(tmp_path, "p.rego", source)
    with pytest.raises(ConfigError) as exc:
        load_policy_dir(tmp_path)
    return exc.value.problems


def test_a_failing_test_rule_refuses_the_module(tmp_path: Path) -> None:
    source = POLICY + '\ntest_wrong if big_refund({"amount": 5})\n'
    found = refusal(tmp_path, source)
    assert len(found) == 1
    line = source.lstrip()[: source.lstrip().index("test_wrong")].count("\n") + 1
    assert found[0].startswith(f"{tmp_path / 'p.rego'}:{line}: Rego test 'test_wrong' failed")


def test_a_module_that_does_not_parse_is_refused_with_its_line(tmp_path: Path) -> None:
    found = refusal(tmp_path, "package mcpguard\n\nimport rego.v1\n\ndecision if { input.x == }\n")
    assert found[0].startswith(f"{tmp_path / 'p.rego'}:5: Rego error")


def test_a_case_insensitive_regex_flag_is_refused(tmp_path: Path) -> None:
    source = POLICY + '\nshouty if regex.match("(?i)drop", input.arguments.sql)\n'
    found = refusal(tmp_path, source)
    assert "(?i)" in found[0]
    line = source.lstrip()[: source.lstrip().index("shouty")].count("\n") + 1
    assert found[0].startswith(f"{tmp_path / 'p.rego'}:{line}: ")


def test_an_unknown_function_is_refused_at_load(tmp_path: Path) -> None:
    found = refusal(tmp_path, POLICY + "\nodd if strings.reverse_all(input.x)\n")
    assert "unknown function 'strings.reverse_all'" in found[0]


def test_an_entrypoint_without_a_default_is_refused(tmp_path: Path) -> None:
    source = 'package mcpguard\n\nimport rego.v1\n\ndecision := {"decision": "BLOCK"} if input.x == 1\n'
    found = refusal(tmp_path, source)
    assert "default decision" in found[0]


def test_a_malformed_decision_is_refused_at_load(tmp_path: Path) -> None:
    found = refusal(tmp_path, 'package mcpguard\n\ndefault decision := {"decision": "PERHAPS"}\n')
    assert "wrong shape" in found[0]


def test_a_folder_without_the_mcpguard_package_is_refused(tmp_path: Path) -> None:
    found = refusal(tmp_path, "package other\n\ndefault allow := false\n")
    assert "package mcpguard" in found[0]


def test_a_crash_inside_regopy_refuses_the_module_without_killing_the_process(tmp_path: Path) -> None:
    source = """
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW", "rules": []}

decision := {"decision": "BLOCK", "rules": ["r"]} if {
	input.tool.name in {"a", "b"}
}

test_crashes_regopy if {
	decision.decision == "BLOCK" with input as {"tool": {"name": "a"}}
}
"""
    found = refusal(tmp_path, source)
    assert "regopy crashed" in found[0]


def test_a_runtime_error_in_rego_blocks_the_call(tmp_path: Path) -> None:
    source = """
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW", "rules": []}

decision := {"decision": "WARN", "rules": ["div"]} if {
	input.arguments.n / input.arguments.d > 1
}
"""
    write(tmp_path, "p.rego", source)
    policies = load_policy_dir(tmp_path)
    assert policies.evaluate(request(args={"n": 4, "d": 2})).decision is Decision.WARN
    failed = policies.evaluate(request(args={"n": 4, "d": 0}))
    assert failed.decision is Decision.BLOCK
    assert failed.verdict.rules == ("rego-error",)


def test_each_thread_gets_its_own_interpreter(tmp_path: Path) -> None:
    import threading

    write(tmp_path, "cards.rego", POLICY)
    policies = load_policy_dir(tmp_path)
    results: list[Decision] = []

    def decide() -> None:
        req = request("mail__send_email", findings=[finding("CREDIT_CARD")])
        results.extend(policies.evaluate(req).decision for _ in range(20))

    threads = [threading.Thread(target=decide) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [Decision.BLOCK] * 80


def test_a_conflict_between_complete_rules_blocks_the_call(tmp_path: Path) -> None:
    source = """
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW"}

decision := {"decision": "BLOCK"} if input.arguments.a == 1

decision := {"decision": "WARN"} if input.arguments.b == 1
"""
    write(tmp_path, "p.rego", source)
    policies = load_policy_dir(tmp_path)
    assert policies.evaluate(request(args={"a": 1})).decision is Decision.BLOCK
    conflict = policies.evaluate(request(args={"a": 1, "b": 1}))
    assert conflict.decision is Decision.BLOCK
    assert conflict.verdict.rules == ("rego-error",)


def test_a_reference_to_an_unbound_name_is_a_warning(tmp_path: Path) -> None:
    source = POLICY + '\nodd if inptu.tool.name == "x"\n'
    write(tmp_path, "p.rego", source)
    policies = load_policy_dir(tmp_path)
    line = source.lstrip()[: source.lstrip().index("odd if")].count("\n") + 1
    assert len(policies.warnings) == 1
    assert policies.warnings[0].startswith(f"{tmp_path / 'p.rego'}:{line}: 'inptu' is not defined anywhere")


def test_date_builtins_work_in_a_gateway_that_also_uses_re2(tmp_path: Path) -> None:
    # With google-re2 in the same process, regopy's time.weekday used to abort it.
    import mcp_guard.inspection  # noqa: F401 - loads google-re2, as the gateway does

    assert "re2" in sys.modules
    write(tmp_path, "weekend.rego", (EXAMPLES / "extras" / "weekend_transfers.rego").read_text())
    policies = load_policy_dir(tmp_path)
    saturday = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
    assert policies.evaluate(request("bank__transfer", now=saturday)).decision is Decision.APPROVAL_REQUIRED
    assert policies.evaluate(request("bank__transfer", now=MONDAY_NOON)).decision is Decision.ALLOW


BACKTRACKING = """
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW", "rules": []}

decision := {"decision": "WARN", "rules": ["aaa"]} if regex.match("^(a+)+$", input.arguments.reason)
"""


def test_an_evaluation_that_runs_away_blocks_the_call_and_the_next_call_gets_a_fresh_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rego_check, "QUERY_TIMEOUT_S", 0.5)
    write(tmp_path, "p.rego", BACKTRACKING)
    policies = load_policy_dir(tmp_path)
    stalled = policies.evaluate(request(args={"reason": "a" * 40 + "!"}))  # regopy's regex backtracks
    assert (stalled.decision, stalled.verdict.rules) == (Decision.BLOCK, ("rego-error",))
    assert "did not answer within 0.5s" in stalled.verdict.reason
    assert policies.evaluate(request(args={"reason": "aaa"})).decision is Decision.WARN


def test_a_crashed_engine_blocks_the_call_and_the_next_call_gets_a_fresh_engine(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", BACKTRACKING)
    policies = load_policy_dir(tmp_path)
    assert policies.evaluate(request(args={"reason": "aaa"})).decision is Decision.WARN
    (engine,) = engine_processes()
    os.kill(engine, signal.SIGKILL)
    crashed = policies.evaluate(request(args={"reason": "aaa"}))
    assert (crashed.decision, crashed.verdict.rules) == (Decision.BLOCK, ("rego-error",))
    assert "the Rego engine stopped (exit code -9)" in crashed.verdict.reason
    assert policies.evaluate(request(args={"reason": "aaa"})).decision is Decision.WARN
    assert engine not in engine_processes()


def engine_processes() -> list[int]:
    """The Rego engines this test process runs (children serving queries)."""
    found = []
    for child in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"mcp_guard.policy.rego_engine" in cmdline and b"serve" in cmdline:
            found.append(int(child))
    return found
