"""Parse: a policy file's YAML document into checked, uncompiled specs.

Structure is checked here (keys, types, decisions, scopes, approval blocks);
conditions are compiled later by :mod:`mcp_guard.policy.compiler`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mcp_guard.config.yaml_source import YamlDocument, validation_problems
from mcp_guard.controls.config import RawSpec
from mcp_guard.decision import Decision
from mcp_guard.durations import parse_duration
from mcp_guard.policy.diagnostics import Diagnostics, Located
from mcp_guard.policy.types import ACTION_CLASSES, ApprovalSpec

HIDE = "HIDE"
DECISIONS = (*(d.value for d in Decision), HIDE)
SCOPE_KINDS = ("user", "agent", "role", "team", "tenant")  # most specific first
SPECIFICITY = {"user": 5, "agent": 4, "role": 3, "team": 2, "tenant": 1}
# Operational controls: parsed by mcp_guard.controls, handed over raw (with locations).
CONTROL_KEYS = ("limits", "budgets", "timeouts", "breakers", "concurrency", "result_bounds")
TOP_KEYS = ("name", "description", "rules", "default", "shadow", "risk_thresholds", "actions", *CONTROL_KEYS)
RULE_KEYS = (
    "id",
    "description",
    "priority",
    "scope",
    "match",
    "when",
    "decision",
    "reason",
    "shadow",
    "override_risk",
    "approval",
)
MATCH_KEYS = ("tools", "upstreams", "actions")
DEFAULT_PRIORITY = 100


@dataclass
class RuleSpec:
    id: str
    decision: str
    loc: Located
    description: str = ""
    reason: str = ""
    priority: int = DEFAULT_PRIORITY
    scope: dict[str, frozenset[str]] = field(default_factory=dict)
    tools: tuple[str, ...] | None = None
    upstreams: frozenset[str] | None = None
    actions: frozenset[str] | None = None
    when: Any = None
    shadow: bool = False
    override_risk: bool = False
    approval: ApprovalSpec | None = None


@dataclass
class FileSpec:
    doc: YamlDocument
    rules: list[RuleSpec] = field(default_factory=list)
    default: tuple[Decision, Located] | None = None
    shadow: bool = False
    risk_thresholds: tuple[dict[Decision, float], Located] | None = None
    actions: list[tuple[str, frozenset[str], Located]] = field(default_factory=list)
    limit_specs: list[RawSpec] = field(default_factory=list)


def parse_file(doc: YamlDocument, diag: Diagnostics) -> FileSpec:
    """Check the structure of one policy document, recording problems in ``diag``."""
    spec = FileSpec(doc)
    root = Located(doc, (), diag)
    data = doc.data
    if data is None:
        return spec
    if not isinstance(data, Mapping):
        root.error("a policy file must be a mapping with 'rules:'")
        return spec
    for key in data:
        if key not in TOP_KEYS:
            root.at(str(key)).error(f"unknown key (expected one of {', '.join(TOP_KEYS)})")
    spec.shadow = _bool(data, "shadow", root)
    if "default" in data:
        d = _decision(data["default"], root.at("default"), allow_hide=False)
        if d is not None:
            spec.default = (Decision(d), root.at("default"))
    if "risk_thresholds" in data:
        spec.risk_thresholds = _thresholds(data["risk_thresholds"], root.at("risk_thresholds"))
    if "actions" in data:
        spec.actions = _actions(data["actions"], root.at("actions"))
    for kind in CONTROL_KEYS:
        if kind in data:
            spec.limit_specs.extend(_raw_specs(kind, data[kind], root.at(kind)))
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        root.at("rules").error("'rules' must be a list")
        return spec
    for i, item in enumerate(rules):
        rule = _rule(item, root.at("rules", i))
        if rule is not None:
            spec.rules.append(rule)
    return spec


def _raw_specs(kind: str, value: Any, loc: Located) -> list[RawSpec]:
    """One RawSpec per list item (with the item's line), or one for a single mapping."""
    doc = loc.doc
    if isinstance(value, list):
        return [RawSpec(doc.file, doc.line_of((kind, i)), kind, item) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return [RawSpec(doc.file, loc.line, kind, value)]
    loc.error(f"'{kind}' must be a list of mappings, not {value!r}")
    return []


def _bool(data: Mapping[str, Any], key: str, loc: Located) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        loc.at(key).error(f"'{key}' must be true or false, not {value!r}")
        return False
    return value


def _decision(value: Any, loc: Located, *, allow_hide: bool) -> str | None:
    valid = DECISIONS if allow_hide else DECISIONS[:-1]
    if not isinstance(value, str) or value not in valid:
        loc.error(f"unknown decision {value!r} (expected one of {', '.join(valid)})")
        return None
    return value


def _names(value: Any, loc: Located, what: str) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    loc.error(f"{what} must be a string or a non-empty list of strings, not {value!r}")
    return None


def _rule(item: Any, loc: Located) -> RuleSpec | None:
    if not isinstance(item, Mapping):
        loc.error("a rule must be a mapping with id, match, when, decision")
        return None
    ok = True
    for key in item:
        if key not in RULE_KEYS:
            loc.at(str(key)).error(f"unknown field '{key}' (expected one of {', '.join(RULE_KEYS)})")
            ok = False
    rid = item.get("id")
    if not isinstance(rid, str) or not rid.strip():
        loc.at("id").error("every rule needs a non-empty string 'id'")
        ok = False
    if "decision" not in item:
        loc.error("required field 'decision' is missing")
        ok = False
    decision = (
        _decision(item.get("decision"), loc.at("decision"), allow_hide=True) if "decision" in item else None
    )
    priority = item.get("priority", DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int):
        loc.at("priority").error(f"'priority' must be an integer, not {priority!r}")
        ok = False
    texts = {}
    for key in ("description", "reason"):
        value = item.get(key, "")
        if not isinstance(value, str):
            loc.at(key).error(f"'{key}' must be a string")
            ok = False
        texts[key] = value if isinstance(value, str) else ""
    scope = _scope(item.get("scope"), loc.at("scope"))
    match = _match(item.get("match"), loc.at("match"))
    shadow = _bool(item, "shadow", loc)
    override = _bool(item, "override_risk", loc)
    approval = None
    if "approval" in item:
        if decision != Decision.APPROVAL_REQUIRED.value:
            loc.at("approval").error("'approval' is only allowed on APPROVAL_REQUIRED rules")
            ok = False
        else:
            approval = _approval(item["approval"], loc.at("approval"), str(rid))
            ok = ok and approval is not None
    if not ok or decision is None or scope is None or match is None:
        return None
    tools, upstreams, actions = match
    return RuleSpec(
        id=str(rid),
        decision=decision,
        loc=loc,
        description=texts["description"],
        reason=texts["reason"],
        priority=int(priority),
        scope=scope,
        tools=tools,
        upstreams=upstreams,
        actions=actions,
        when=item.get("when"),
        shadow=shadow,
        override_risk=override,
        approval=approval,
    )


def _scope(value: Any, loc: Located) -> dict[str, frozenset[str]] | None:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        loc.error("'scope' must be a mapping such as {team: finance}")
        return None
    out: dict[str, frozenset[str]] = {}
    ok = True
    for kind, names in value.items():
        if kind not in SCOPE_KINDS:
            loc.at(str(kind)).error(f"unknown scope kind '{kind}' (expected one of {', '.join(SCOPE_KINDS)})")
            ok = False
            continue
        parsed = _names(names, loc.at(str(kind)), f"scope '{kind}'")
        if parsed is None:
            ok = False
        else:
            out[str(kind)] = frozenset(parsed)
    return out if ok else None


def _match(
    value: Any, loc: Located
) -> tuple[tuple[str, ...] | None, frozenset[str] | None, frozenset[str] | None] | None:
    if value is None:
        return None, None, None
    if not isinstance(value, Mapping):
        loc.error("'match' must be a mapping with tools, upstreams, actions")
        return None
    ok = True
    parsed: dict[str, tuple[str, ...]] = {}
    for key, names in value.items():
        if key not in MATCH_KEYS:
            loc.at(str(key)).error(f"unknown match key '{key}' (expected one of {', '.join(MATCH_KEYS)})")
            ok = False
            continue
        got = _names(names, loc.at(str(key)), f"match '{key}'")
        if got is None:
            ok = False
        else:
            parsed[str(key)] = got
    for i, action in enumerate(parsed.get("actions", ())):
        if action not in ACTION_CLASSES:
            loc.at("actions", i).error(
                f"unknown action class '{action}' (expected {', '.join(sorted(ACTION_CLASSES))})"
            )
            ok = False
    if not ok:
        return None
    ups, acts = parsed.get("upstreams"), parsed.get("actions")
    return parsed.get("tools"), frozenset(ups) if ups else None, frozenset(acts) if acts else None


def _approval(value: Any, loc: Located, rule_id: str) -> ApprovalSpec | None:
    if not isinstance(value, Mapping):
        loc.error("'approval' must be a mapping (mode, approvers, allow_self, ttl, valid_for, channels)")
        return None
    data = dict(value)
    ok = True
    for key in ("ttl", "valid_for"):
        if key in data:
            try:
                data[f"{key}_s"] = parse_duration(data.pop(key), positive=True)
            except ValueError as exc:
                loc.at(key).error(str(exc))
                ok = False
    for bad in ("ttl_s", "valid_for_s", "rule_id", "file", "line"):
        if bad in value:
            loc.at(bad).error("unknown key")
            return None
    data |= {"rule_id": rule_id, "file": loc.doc.file, "line": loc.line}
    try:
        spec = ApprovalSpec.model_validate(data)
    except ValidationError as exc:
        loc.diag.errors.extend(validation_problems(exc, loc.doc, loc.path, data=data))
        return None
    return spec if ok else None


def _thresholds(value: Any, loc: Located) -> tuple[dict[Decision, float], Located] | None:
    if value is None or value == {}:
        return {}, loc
    if not isinstance(value, Mapping):
        loc.error("'risk_thresholds' must map decisions to minimum scores, e.g. {BLOCK: 90}")
        return None
    out: dict[Decision, float] = {}
    for key, score in value.items():
        at = loc.at(str(key))
        if key not in DECISIONS[1:-1]:
            at.error(f"unknown decision {key!r} (expected MONITOR_ONLY, WARN, APPROVAL_REQUIRED, BLOCK)")
            continue
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
            at.error(f"a risk threshold must be a number from 0 to 100, not {score!r}")
            continue
        out[Decision(key)] = float(score)
    ordered = sorted(out.items(), key=lambda kv: kv[0].severity)
    for (lo_d, lo), (hi_d, hi) in itertools.pairwise(ordered):
        if hi < lo:
            loc.error(f"threshold for {hi_d.value} ({hi:g}) is below the one for {lo_d.value} ({lo:g})")
            return None
    return out, loc


def _actions(value: Any, loc: Located) -> list[tuple[str, frozenset[str], Located]]:
    if not isinstance(value, Mapping):
        loc.error("'actions' must map tool globs to action classes, e.g. {'db__delete*': [delete]}")
        return []
    out = []
    for glob, classes in value.items():
        at = loc.at(str(glob))
        names = _names(classes, at, f"actions for '{glob}'")
        if names is None:
            continue
        bad = [c for c in names if c not in ACTION_CLASSES]
        if bad:
            at.error(f"unknown action class {bad[0]!r} (expected {', '.join(sorted(ACTION_CLASSES))})")
            continue
        out.append((str(glob), frozenset(names), at))
    return out
