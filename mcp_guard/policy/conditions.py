"""Compile a rule's ``when:`` mapping into one closure ``(PolicyRequest) -> bool``.

Every key of a ``when`` mapping is a condition and all must hold; ``any:``, ``all:``
and ``not:`` combine nested mappings. Subjects: ``principal.<field>``, ``tool.<field>``,
``environment``, ``args.<path>``, ``findings``, ``risk``, ``risk.factors.<name>``,
``time``, ``history``. docs/policies.md documents each one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from mcp_guard.durations import parse_duration
from mcp_guard.findings import Severity
from mcp_guard.policy.diagnostics import Located
from mcp_guard.policy.operators import UndecidableValue, ValueTest, compile_test
from mcp_guard.policy.paths import MISSING, Step, compile_getter, compile_path, parse_path
from mcp_guard.policy.timewindow import ALL_DAYS, TimeWindow, parse_days, parse_window, parse_zone
from mcp_guard.policy.types import PolicyRequest

Cond = Callable[[PolicyRequest], bool]
PRINCIPAL_FIELDS = ("user", "agent", "roles", "teams", "tenant", "scopes")
TOOL_FIELDS = ("name", "upstream", "actions", "environment")
SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
_SUBJECTS = "principal.<field>, tool.<field>, environment, args.<path>, findings, risk, "
_SUBJECTS += "risk.factors.<name>, time, history, any, all, not"


def _true(_: PolicyRequest) -> bool:
    return True


@dataclass
class Compiled:
    """A compiled condition, whether it reads call-only data (arguments, findings...) and
    whether it reads the clock (``time``: its answer may change with ``now`` alone)."""

    cond: Cond
    call_only: bool = False
    always: bool = False
    reads_clock: bool = False


def compile_when(spec: Any, loc: Located) -> Compiled | None:
    """Compile a ``when`` mapping; ``None`` after recording errors at ``loc``."""
    if spec is None:
        return Compiled(_true, always=True)
    if not isinstance(spec, Mapping):
        loc.error("'when' must be a mapping of conditions")
        return None
    parts: list[Compiled] = []
    ok = True
    for key, value in spec.items():
        part = _compile_subject(str(key), value, loc.at(str(key)))
        if part is None:
            ok = False
        else:
            parts.append(part)
    if not ok:
        return None
    return _conj(parts)


def _conj(parts: list[Compiled]) -> Compiled:
    call_only = any(p.call_only for p in parts)
    clock = any(p.reads_clock for p in parts)
    conds = [p.cond for p in parts if not p.always]
    if not conds:
        return Compiled(_true, call_only, always=True)
    if len(conds) == 1:
        return Compiled(conds[0], call_only, reads_clock=clock)
    if len(conds) == 2:
        a, b = conds
        return Compiled(lambda r: a(r) and b(r), call_only, reads_clock=clock)
    tup = tuple(conds)
    return Compiled(lambda r: all(c(r) for c in tup), call_only, reads_clock=clock)


def _compile_subject(key: str, value: Any, loc: Located) -> Compiled | None:
    if key in ("any", "all"):
        return _combinator(key, value, loc)
    if key == "not":
        inner = compile_when(value, loc) if isinstance(value, Mapping) else None
        if not isinstance(value, Mapping):
            loc.error("'not' takes a mapping of conditions")
        if inner is None:
            return None
        c = inner.cond
        return Compiled(lambda r: not c(r), inner.call_only, reads_clock=inner.reads_clock)
    if key.startswith("principal."):
        return _principal(key[len("principal.") :], value, loc)
    if key.startswith("tool.") or key == "environment":
        return _tool("environment" if key == "environment" else key[len("tool.") :], value, loc)
    if key.startswith("args"):
        return _args(key, value, loc)
    if key == "findings":
        return _findings(value, loc)
    if key == "risk":
        return _value(lambda r: MISSING if r.risk is None else r.risk, value, loc, call_only=True)
    if key.startswith("risk.factors."):
        name = key[len("risk.factors.") :]
        return _value(lambda r: r.risk_factors.get(name, MISSING), value, loc, call_only=True)
    if key == "time":
        return _time(value, loc)
    if key == "history":
        return _history(value, loc)
    loc.error(f"unknown condition '{key}' (expected {_SUBJECTS})")
    return None


def _combinator(key: str, value: Any, loc: Located) -> Compiled | None:
    if not isinstance(value, list) or not value:
        loc.error(f"'{key}' takes a non-empty list of condition mappings")
        return None
    parts = [compile_when(item, loc.at(i)) for i, item in enumerate(value)]
    done = [p for p in parts if p is not None]
    if len(done) != len(parts):
        return None
    if key == "all":
        return _conj(done)
    conds = tuple(p.cond for p in done)
    return Compiled(
        lambda r: any(c(r) for c in conds),
        any(p.call_only for p in done),
        reads_clock=any(p.reads_clock for p in done),
    )


def _value(
    get: Callable[[PolicyRequest], Any], spec: Any, loc: Located, *, call_only: bool
) -> Compiled | None:
    vt = compile_test(spec, loc)
    if vt is None:
        return None
    return Compiled(_single(get, vt), call_only)


def _single(get: Callable[[PolicyRequest], Any], vt: ValueTest) -> Cond:
    pred = vt.pred
    if vt.exists is False:
        return lambda r: get(r) is MISSING
    if pred is None:
        return lambda r: get(r) is not MISSING
    return lambda r: (v := get(r)) is not MISSING and pred(v)


def _principal(name: str, spec: Any, loc: Located) -> Compiled | None:
    if name not in PRINCIPAL_FIELDS:
        loc.error(f"unknown principal field '{name}' (expected {', '.join(PRINCIPAL_FIELDS)})")
        return None

    def get(r: PolicyRequest) -> Any:
        v = getattr(r.principal, name)
        return MISSING if v is None else v

    return _value(get, spec, loc, call_only=False)


def _tool(name: str, spec: Any, loc: Located) -> Compiled | None:
    if name not in TOOL_FIELDS:
        loc.error(f"unknown tool field '{name}' (expected {', '.join(TOOL_FIELDS)})")
        return None

    def get(r: PolicyRequest) -> Any:
        v = getattr(r.tool, name)
        return MISSING if v is None else v

    return _value(get, spec, loc, call_only=False)


def _args(key: str, spec: Any, loc: Located) -> Compiled | None:
    try:
        steps = parse_path(key)
    except ValueError as exc:
        loc.error(str(exc))
        return None
    vt = compile_test(spec, loc)
    if vt is None:
        return None
    return Compiled(_naming(key, _args_test(steps, vt)), call_only=True)


def _naming(key: str, cond: Cond) -> Cond:
    """``cond``, with the argument path added to an :class:`UndecidableValue`'s message."""

    def named(r: PolicyRequest) -> bool:
        try:
            return cond(r)
        except UndecidableValue as exc:
            raise UndecidableValue(f"{key}: {exc}") from None

    return named


def _args_test(steps: list[Step], vt: ValueTest) -> Cond:
    getter = compile_getter(steps)
    if getter is not None:
        g = getter
        return _single(lambda r: g(r.arguments), vt)
    resolve = compile_path(steps)
    pred = vt.pred
    if vt.exists is False:
        return lambda r: not resolve(r.arguments)
    if pred is None:
        return lambda r: bool(resolve(r.arguments))
    p = pred
    return lambda r: any(p(v) for v in resolve(r.arguments))


_FINDING_KEYS = ("any", "all", "none", "categories", "min_severity", "path", "count")


def _findings(spec: Any, loc: Located) -> Compiled | None:
    if isinstance(spec, list):
        spec = {"any": spec}
    if not isinstance(spec, Mapping) or not spec:
        loc.error("'findings' takes a mapping with any/all/none/categories/min_severity/path/count")
        return None
    ok = True
    for k in spec:
        if k not in _FINDING_KEYS:
            loc.at(str(k)).error(f"unknown findings key '{k}' (expected {', '.join(_FINDING_KEYS)})")
            ok = False
    sets: dict[str, frozenset[str]] = {}
    for k in ("any", "all", "none", "categories"):
        if k in spec:
            v = spec[k]
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                loc.at(k).error(f"'{k}' takes a list of names")
                ok = False
            else:
                sets[k] = frozenset(v)
    min_rank = 0
    if "min_severity" in spec:
        try:
            min_rank = SEVERITY_RANK[Severity(str(spec["min_severity"]).lower())]
        except ValueError:
            loc.at("min_severity").error(
                f"unknown severity {spec['min_severity']!r} (low, medium, high, critical)"
            )
            ok = False
    path_glob = spec.get("path")
    if path_glob is not None and not isinstance(path_glob, str):
        loc.at("path").error("'path' takes a glob string such as '$.args.body*'")
        ok = False
    count = compile_test(spec["count"], loc.at("count")) if "count" in spec else None
    if "count" in spec and (count is None or count.pred is None):
        ok = False
    if not ok:
        return None
    cats = sets.get("categories")
    any_t, all_t, none_t = sets.get("any"), sets.get("all"), sets.get("none")
    count_pred = count.pred if count is not None else None

    def cond(r: PolicyRequest) -> bool:
        kept = [
            f
            for f in r.findings
            if (cats is None or f.category in cats)
            and SEVERITY_RANK[f.severity] >= min_rank
            and (path_glob is None or fnmatchcase(f.path, path_glob))
        ]
        types = {f.type for f in kept}
        if any_t is not None and types.isdisjoint(any_t):
            return False
        if all_t is not None and not all_t <= types:
            return False
        if none_t is not None and not types.isdisjoint(none_t):
            return False
        if count_pred is not None:
            n = sum(1 for f in kept if any_t is None or f.type in any_t)
            return count_pred(n)
        if any_t is None and all_t is None and none_t is None:
            return bool(kept)
        return True

    return Compiled(cond, call_only=True)


def _time(spec: Any, loc: Located) -> Compiled | None:
    if not isinstance(spec, Mapping):
        loc.error("'time' takes a mapping with inside|outside, days, tz")
        return None
    unknown = [k for k in spec if k not in ("inside", "outside", "days", "tz")]
    for k in unknown:
        loc.at(str(k)).error(f"unknown time key '{k}' (expected inside, outside, days, tz)")
    if "inside" in spec and "outside" in spec:
        loc.error("use either 'inside' or 'outside', not both")
        return None
    if unknown:
        return None
    ok = True
    try:
        zone = parse_zone(spec.get("tz", "UTC"))
    except ValueError as exc:
        loc.at("tz").error(str(exc))
        ok = False
    days = ALL_DAYS
    if "days" in spec:
        try:
            days = parse_days(spec["days"])
        except ValueError as exc:
            loc.at("days").error(str(exc))
            ok = False
    key = "outside" if "outside" in spec else "inside"
    start, end = 0, 24 * 60
    if key in spec:
        try:
            start, end = parse_window(spec[key])
        except ValueError as exc:
            loc.at(key).error(str(exc))
            ok = False
    elif "days" not in spec:
        loc.error("'time' needs 'inside', 'outside' or 'days'")
        ok = False
    if not ok:
        return None
    window = TimeWindow(start, end, days, zone)
    if key == "outside":
        return Compiled(lambda r: not window.contains(r.now), reads_clock=True)
    return Compiled(lambda r: window.contains(r.now), reads_clock=True)


def _history(spec: Any, loc: Located) -> Compiled | None:
    if not isinstance(spec, Mapping):
        loc.error("'history' takes a mapping with tool, within, count, across")
        return None
    ok = True
    for k in spec:
        if k not in ("tool", "within", "count", "across"):
            loc.at(str(k)).error(f"unknown history key '{k}' (expected tool, within, count, across)")
            ok = False
    across = spec.get("across", "session")
    if across not in ("session", "principal"):
        loc.at("across").error(
            f"'across' is 'session' (this connection) or 'principal' (all of its), not {across!r}"
        )
        ok = False
    glob = spec.get("tool")
    if glob is not None and not isinstance(glob, str):
        loc.at("tool").error("'tool' takes a glob string")
        ok = False
    within = 0.0
    if "within" not in spec:
        loc.error("'history' needs 'within' (e.g. 60s)")
        ok = False
    else:
        try:
            within = parse_duration(spec["within"], positive=True)
        except ValueError as exc:
            loc.at("within").error(str(exc))
            ok = False
    count = compile_test(spec.get("count", {"gte": 1}), loc.at("count"))
    if count is None or count.pred is None:
        if count is not None:
            loc.at("count").error("'count' needs a numeric comparison such as {gte: 5}")
        return None
    if not ok:
        return None
    pred = count.pred
    of_principal = across == "principal"

    def counted(r: PolicyRequest) -> float:
        history = r.principal_history if of_principal else r.history
        return history.count(glob if glob is not None else r.tool.name, within, r.now)

    return Compiled(lambda r: pred(counted(r)), call_only=True, reads_clock=True)
