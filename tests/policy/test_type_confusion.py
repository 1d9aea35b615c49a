"""Argument conditions against values sent with another type or spelling than the rule expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.decision import Decision
from mcp_guard.policy import load_policy_dir

from .helpers import load, request, who

EXAMPLES = Path(__file__).resolve().parents[2] / "policies"
FIONA = who("fiona", roles=["analyst"], teams=["finance"])


@pytest.mark.parametrize("amount", ["Infinity", "inf", "-Infinity", "1e999", "NaN", " nan "])
def test_an_amount_sent_as_a_non_finite_numeric_string_is_blocked_not_let_through(amount: str) -> None:
    # pydantic (the demo bank, FastMCP tools) reads "Infinity" and "NaN" as floats, so the
    # upstream would refund an amount no comparison in the policy could bound.
    bundled = load_policy_dir(EXAMPLES)
    req = request("bank__refund", FIONA, args={"payment_id": "p-1", "amount": amount}, actions=["write"])
    result = bundled.evaluate(req)
    assert result.decision is Decision.BLOCK
    assert result.verdict.rules == ("policy-error",)
    assert f"args.amount: {amount!r} reads as" in result.verdict.reason
    assert "not a finite number" in result.verdict.reason


def test_a_finite_amount_sent_as_a_string_is_still_held_for_approval() -> None:
    bundled = load_policy_dir(EXAMPLES)
    req = request("bank__refund", FIONA, args={"payment_id": "p-1", "amount": " 1500 "}, actions=["write"])
    assert bundled.evaluate(req).decision is Decision.APPROVAL_REQUIRED


def test_a_word_that_reads_as_nan_is_harmless_where_no_number_is_compared(tmp_path: Path) -> None:
    policies = load(tmp_path, "rules:\n  - id: r\n    when: {args.name: {eq: 5}}\n    decision: BLOCK\n")
    assert policies.evaluate(request(args={"name": "Nan"})).decision is Decision.ALLOW


@pytest.mark.parametrize("sent", [1001, 1001.0, "1001"])
def test_an_account_listed_as_a_string_is_matched_when_sent_as_a_number(tmp_path: Path, sent: object) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - id: frozen-accounts
            when:
              args.account: {in: ["1001", "1002"]}
            decision: BLOCK
          - id: known-accounts
            when:
              args.account: {not_in: ["1001", "1002"]}
            decision: WARN
        """,
    )
    assert policies.evaluate(request(args={"account": sent})).decision is Decision.BLOCK
