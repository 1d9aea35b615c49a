from __future__ import annotations

import pytest

from mcp_guard.config.yaml_source import parse_yaml
from mcp_guard.controls import ControlsConfig, RawSpec, parse_limit_specs
from mcp_guard.errors import ConfigError
from tests.controls.controls_support import controls

POLICY = """\
limits:
  - id: payments-per-agent
    tools: ["bank__*"]
    per: [agent]
    rate: 10/minute
    burst: 10
budgets:
  - id: daily-refunds
    tools: ["bank__refund"]
    per: [user]
    period: day
    tz: Europe/Berlin
    max_calls: 50
    max_cost: 5000
    cost: {arg: amount}
  - id: broken
    period: fortnight
    max_calls: 1
    tz: Mars/Olympus
timeouts:
  - {upstreams: [bank], seconds: 10s}
"""


def specs_of(text: str, file: str = "policies/ops.yaml") -> list[RawSpec]:
    doc = parse_yaml(text, file)
    return [
        RawSpec(file, doc.line_of((kind, i)), kind, item)
        for kind, items in doc.data.items()
        for i, item in enumerate(items)
    ]


def test_the_documented_example_parses() -> None:
    cfg = parse_limit_specs(specs_of(POLICY.split("  - id: broken", maxsplit=1)[0] + "timeouts: []\n"))
    assert isinstance(cfg, ControlsConfig)
    (limit,) = cfg.limits
    assert limit.rate == (10.0, 60.0) and limit.per_second == pytest.approx(1 / 6)
    (budget,) = cfg.budgets
    assert budget.cost is not None and budget.cost.arg == "amount"


def test_errors_name_file_line_control_and_key_all_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        parse_limit_specs(specs_of(POLICY))
    problems = err.value.problems
    assert any(
        p.startswith("policies/ops.yaml:16: budgets[broken].period: Input should be") for p in problems
    )
    assert len(problems) == 1  # tz is only checked once the fields parse


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("limits", {"id": "x", "rate": "10/fortnight"}, "limits[x].rate: invalid rate '10/fortnight'"),
        ("limits", {"id": "x", "rate": "1/s", "per": ["planet"]}, "limits[x].per.0: Input should be"),
        ("limits", {"id": "x", "rate": "1/s", "colour": 1}, "limits[x].colour: unknown key"),
        ("limits", {"id": "x"}, "limits[x].rate: required key is missing"),
        ("limits", {"id": "x", "rate": "0/s"}, "limits[x]: rate: must be a positive number"),
        ("limits", {"id": "x", "rate": "1/s", "decision": "allow"}, "limits[x].decision: Input should be"),
        (
            "budgets",
            {"id": "b", "period": "day", "max_calls": 1, "tz": "Mars/X"},
            "tz: unknown IANA time zone",
        ),
        ("budgets", {"id": "b", "period": "day"}, "a budget needs max_calls, max_cost or both"),
        (
            "budgets",
            {"id": "b", "period": "day", "max_calls": 1, "cost": "lots"},
            "budgets[b].cost: expected a number",
        ),
        (
            "budgets",
            {"id": "b", "period": "day", "max_calls": 1, "cost": {"arg": "a", "x": 1}},
            "cost.x: unknown key",
        ),
        ("timeouts", {"seconds": "soon"}, "timeouts[0].seconds: invalid duration 'soon'"),
        ("timeouts", {"seconds": 0}, "timeouts[0].seconds: Input should be greater than 0"),
        (
            "timeouts",
            {"seconds": "400d"},
            "timeouts[0].seconds: invalid duration '400d': must be at most 365 days",
        ),
        ("limits", {"id": "x", "rate": "1/400d"}, "limits[x].rate: invalid rate '1/400d'"),
        ("limits", {"id": "x", "rate": "1/0s"}, "limits[x].rate: invalid rate '1/0s'"),
        ("breakers", {"id": "br", "window": "366 days"}, "breakers[br].window: invalid duration '366 days'"),
        (
            "concurrency",
            {"id": "c", "max": 1, "wait": "2000d"},
            "concurrency[c].wait: invalid duration '2000d'",
        ),
        (
            "breakers",
            {"id": "br", "consecutive_failures": None},
            "needs consecutive_failures, error_rate or both",
        ),
        ("breakers", {"id": "br", "error_rate": 1.5}, "breakers[br].error_rate: Input should be less than"),
        (
            "concurrency",
            {"id": "c", "max": 0},
            "concurrency[c].max: Input should be greater than or equal to 1",
        ),
        ("result_bounds", {"id": "r", "on_exceed": "explode"}, "result_bounds[r].on_exceed: Input should be"),
        ("quotas", {"id": "q"}, "unknown control kind 'quotas'"),
        ("limits", "ten per minute", "limits[0]: expected a mapping, got str"),
    ],
)
def test_each_mistake_is_reported_with_its_location(kind: str, data: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_limit_specs([RawSpec("p.yaml", 7, kind, data)])
    assert any(p.startswith("p.yaml:7: ") and message in p for p in err.value.problems), err.value.problems


def test_a_burst_below_one_call_is_refused_since_that_bucket_would_never_admit_a_call() -> None:
    with pytest.raises(ConfigError) as err:
        parse_limit_specs([RawSpec("p.yaml", 7, "limits", {"id": "x", "rate": "1/minute", "burst": 0.5})])
    assert err.value.problems == [
        "p.yaml:7: limits[x]: burst: must be at least 1 (a bucket of 0.5 never holds a call)"
    ]


def test_a_budget_whose_fixed_cost_exceeds_its_maximum_is_refused_since_it_would_never_admit_a_call() -> None:
    item = {"id": "x", "period": "day", "max_cost": 3, "cost": 5}
    with pytest.raises(ConfigError) as err:
        parse_limit_specs([RawSpec("p.yaml", 7, "budgets", item)])
    assert err.value.problems == [
        "p.yaml:7: budgets[x]: cost: a fixed cost of 5 is more than max_cost 3 (no call would ever fit)"
    ]


def test_a_duplicate_id_names_both_places() -> None:
    item = {"id": "same", "rate": "1/s"}
    with pytest.raises(ConfigError) as err:
        parse_limit_specs([RawSpec("a.yaml", 3, "limits", item), RawSpec("b.yaml", 9, "limits", item)])
    assert err.value.problems == ["b.yaml:9: limits[same]: duplicate id 'same' (first defined at a.yaml:3)"]


def test_a_whole_section_may_be_passed_as_one_spec() -> None:
    cfg = parse_limit_specs(
        [RawSpec("p.yaml", 1, "limits", [{"id": "a", "rate": "1/s"}, {"id": "b", "rate": "2/s"}])]
    )
    assert [s.id for s in cfg.limits] == ["a", "b"]


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("5/10s", (5, 10)), ("100/hour", (100, 3600)), ("2 / day", (2, 86400)), ("5/500ms", (5, 0.5))],
)
def test_rate_forms(rate: str, expected: tuple[float, float]) -> None:
    (limit,) = parse_limit_specs([RawSpec("p.yaml", 1, "limits", {"id": "a", "rate": rate})]).limits
    assert limit.rate == expected


def test_timeouts_resolve_tool_over_upstream_over_default() -> None:
    c = controls(
        timeouts=[
            {"seconds": "30s"},
            {"upstreams": ["bank"], "seconds": 10},
            {"tools": ["bank__statement*"], "seconds": "2m"},
            {"tools": ["bank__statement_pdf"], "seconds": "5m"},
        ]
    )
    assert c.timeout_for("bank", "bank__statement_pdf") == 300
    assert c.timeout_for("bank", "bank__statements") == 120
    assert c.timeout_for("bank", "bank__pay") == 10
    assert c.timeout_for("search", "search__web") == 30
    assert controls().timeout_for("x", "x__y") == 60


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (
            "budgets",
            {"id": "b", "period": "day", "max_calls": 1, "approval": {"approvers": {"roles": ["sre"]}}},
            "budgets[b]: approval: only a control whose decision is APPROVAL_REQUIRED asks for approval",
        ),
        (
            "limits",
            {"id": "x", "rate": "1/minute", "decision": "APPROVAL_REQUIRED", "approval": {"mood": "hold"}},
            "limits[x].approval.mood: unknown key",
        ),
        (
            "limits",
            {
                "id": "x",
                "rate": "1/m",
                "decision": "APPROVAL_REQUIRED",
                "approval": {"approvers": {"group": []}},
            },
            "limits[x].approval.approvers.group: unknown key",
        ),
        (
            "limits",
            {"id": "x", "rate": "1/minute", "decision": "APPROVAL_REQUIRED", "approval": {"ttl_s": 5}},
            "limits[x].approval: unknown key 'ttl_s'",
        ),
        (
            "budgets",
            {
                "id": "b",
                "period": "day",
                "max_calls": 1,
                "decision": "APPROVAL_REQUIRED",
                "approval": {"ttl": "soon"},
            },
            "budgets[b].approval: ttl: invalid duration 'soon'",
        ),
        (
            "budgets",
            {
                "id": "b",
                "period": "day",
                "max_calls": 1,
                "decision": "APPROVAL_REQUIRED",
                "approval": "finance",
            },
            "budgets[b].approval: must be a mapping",
        ),
    ],
)
def test_a_controls_approval_block_is_checked_as_a_rules_is(kind: str, data: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_limit_specs([RawSpec("p.yaml", 7, kind, data)])
    assert any(p.startswith("p.yaml:7: ") and message in p for p in err.value.problems), err.value.problems


def test_a_controls_approval_block_takes_the_same_keys_as_a_rules() -> None:
    block = {
        "mode": "defer",
        "approvers": {"roles": ["finance"], "users": ["erin"]},
        "allow_self": True,
        "ttl": "30m",
        "valid_for": "5m",
        "channels": ["ops-slack"],
    }
    item = {"id": "b", "period": "day", "max_cost": 100, "decision": "approval_required", "approval": block}
    (budget,) = parse_limit_specs([RawSpec("p.yaml", 7, "budgets", item)]).budgets
    assert budget.approval is not None
    assert budget.approval.mode == "defer" and budget.approval.approvers.roles == ("finance",)
    assert budget.approval.ttl_s == 1800 and budget.approval.valid_for_s == 300
    assert budget.approval.allow_self and budget.approval.channels == ("ops-slack",)
