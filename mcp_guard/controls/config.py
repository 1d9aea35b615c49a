"""Configuration of the operational controls: pydantic models and the spec parser.

Controls live in the policy files next to the rules, under the top-level keys
``limits``, ``budgets``, ``timeouts``, ``breakers``, ``concurrency`` and
``result_bounds``. The policy loader hands each list item over as a :class:`RawSpec`;
:func:`parse_limit_specs` validates them all and reports every problem as
``file:line: message``. docs/controls.md is the reference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from mcp_guard.approvals.models import ApprovalBlock, approval_block_fields
from mcp_guard.controls.keys import Dimension
from mcp_guard.decision import Decision
from mcp_guard.durations import parse_duration
from mcp_guard.errors import ConfigError

KINDS = ("limits", "budgets", "timeouts", "breakers", "concurrency", "result_bounds")

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


@dataclass
class RawSpec:
    """One item of a control section, as the policy loader found it."""

    file: str
    line: int
    kind: str
    data: Any


def _rate(value: Any) -> Any:
    """``"10/minute"``, ``"5/10s"``, ``"100/hour"`` → (count, seconds)."""
    if isinstance(value, str):
        m = _RATE.match(value.lower())
        period = _period(f"{m.group(2) or 1}{m.group(3)}") if m else None
        if m is None or period is None:
            raise ValueError(
                f"invalid rate {value!r}: use 'N/second', 'N/minute', 'N/hour', 'N/day' or 'N/10s' "
                "(a period of at most 365 days)"
            )
        return (float(m.group(1)), period)
    return value


def _period(text: str) -> float | None:
    try:
        return parse_duration(text, positive=True)
    except ValueError:
        return None


def _decision(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Rate = Annotated[tuple[float, float], BeforeValidator(_rate)]
RefusalDecision = Annotated[
    Literal[Decision.BLOCK, Decision.APPROVAL_REQUIRED, Decision.WARN, Decision.MONITOR_ONLY],
    BeforeValidator(_decision),
]
ControlId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
Globs = Annotated[tuple[str, ...], Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Model):
    """Restricts a control to some principals; keys are ANDed, values in a list ORed."""

    users: tuple[str, ...] | None = None
    agents: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None
    teams: tuple[str, ...] | None = None
    tenants: tuple[str, ...] | None = None


class _Selected(_Model):
    id: ControlId
    description: str = ""
    tools: Globs = ("*",)
    upstreams: Globs = ("*",)


class _PrincipalSelected(_Selected):
    scope: Scope | None = None
    per: tuple[Dimension, ...] = ("global",)

    @model_validator(mode="after")
    def _per_not_empty(self) -> _PrincipalSelected:
        if not self.per:
            raise ValueError("per: list at least one dimension (or 'global')")
        return self


Approval = Annotated[ApprovalBlock, BeforeValidator(approval_block_fields)]


class _Refusing(_PrincipalSelected):
    """A control that refuses calls over it with its ``decision``; under APPROVAL_REQUIRED
    a human may let such a call through, asked as ``approval`` says (defaults when absent)."""

    decision: RefusalDecision = Decision.BLOCK
    approval: Approval | None = None

    @model_validator(mode="after")
    def _approval_only_when_asked(self) -> _Refusing:
        if self.approval is not None and self.decision is not Decision.APPROVAL_REQUIRED:
            raise ValueError(
                "approval: only a control whose decision is APPROVAL_REQUIRED asks for approval "
                f"(this one's is {self.decision.value})"
            )
        return self


class LimitSpec(_Refusing):
    """A token-bucket rate limit: ``rate`` calls per period, bursts up to ``burst``."""

    rate: Rate
    burst: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _positive(self) -> LimitSpec:
        count, per = self.rate
        if count <= 0 or per <= 0 or not math.isfinite(count):
            raise ValueError("rate: must be a positive number of calls per a positive period")
        if self.burst is not None and self.burst < 1:
            # A call takes one whole token: a smaller bucket refuses every call forever
            # while telling each one to retry in a few seconds.
            raise ValueError(f"burst: must be at least 1 (a bucket of {self.burst:g} never holds a call)")
        return self

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(self.rate[0], 1.0)

    @property
    def per_second(self) -> float:
        return self.rate[0] / self.rate[1]


def _cost(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, {arg: name} or a mapping of tool glob to number")
    if isinstance(value, int | float):
        return {"fixed": value}
    if isinstance(value, dict):
        return value if "arg" in value else {"per_tool": value}
    raise ValueError("expected a number, {arg: name} or a mapping of tool glob to number")


NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class CostSpec(_Model):
    """What one call costs: a fixed number, an argument (times ``scale``), or per tool glob.

    Written in YAML as ``cost: 5``, ``cost: {arg: amount, scale: 0.01, default: 0}`` or
    ``cost: {"bank__refund": 10, "bank__*": 1}`` (first matching glob wins, else 1).
    """

    fixed: NonNegative | None = None
    arg: str | None = Field(default=None, min_length=1)
    scale: NonNegative = 1.0
    default: NonNegative | None = None
    per_tool: dict[str, NonNegative] | None = None


Cost = Annotated[CostSpec, BeforeValidator(_cost)]


class BudgetSpec(_Refusing):
    """A calendar budget: calls and/or cost units per hour/day/week/month in a time zone."""

    period: Literal["hour", "day", "week", "month"]
    tz: str = "UTC"
    max_calls: int | None = Field(default=None, ge=0)
    max_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    cost: Cost | None = None

    @model_validator(mode="after")
    def _check(self) -> BudgetSpec:
        if self.max_calls is None and self.max_cost is None:
            raise ValueError("a budget needs max_calls, max_cost or both")
        fixed = self.cost.fixed if self.cost is not None else None
        if fixed is not None and self.max_cost is not None and fixed > self.max_cost:
            # Every call would be refused, each told to wait for a reset that cannot help.
            raise ValueError(
                f"cost: a fixed cost of {fixed:g} is more than max_cost {self.max_cost:g} "
                "(no call would ever fit)"
            )
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"tz: unknown IANA time zone {self.tz!r}") from None
        return self


class TimeoutSpec(_Model):
    """How long a forwarded call may take, for matching upstreams and tools."""

    id: ControlId | None = None
    tools: Globs = ("*",)
    upstreams: Globs = ("*",)
    seconds: Seconds


class BreakerSpec(_Selected):
    """A circuit breaker, one per matching upstream (or per tool with ``per: tool``)."""

    per: Literal["upstream", "tool"] = "upstream"
    consecutive_failures: int | None = Field(default=5, ge=1)
    error_rate: float | None = Field(default=None, gt=0, le=1)
    window: Seconds = 60.0
    min_calls: int = Field(default=10, ge=1)
    open_for: Seconds = 30.0
    half_open_probes: int = Field(default=1, ge=1)
    count_tool_errors: bool = False

    @model_validator(mode="after")
    def _check(self) -> BreakerSpec:
        if self.consecutive_failures is None and self.error_rate is None:
            raise ValueError("a breaker needs consecutive_failures, error_rate or both")
        return self


class ConcurrencySpec(_PrincipalSelected):
    """At most ``max`` calls in flight per key; refuse at once or wait up to ``wait``."""

    max: int = Field(ge=1)
    wait: Annotated[float, BeforeValidator(parse_duration)] = 0.0


class BoundsSpec(_Selected):
    """Bounds on a tool result: serialized bytes, characters per text item, item count."""

    max_bytes: int | None = Field(default=None, ge=256)
    max_text_chars: int | None = Field(default=None, ge=1)
    max_items: int | None = Field(default=None, ge=1)
    max_read_bytes: int | None = Field(default=None, ge=1024)
    on_exceed: Literal["truncate", "block"] = "truncate"


class ControlsConfig(_Model):
    """Every control, validated. Order within a kind is file order."""

    limits: tuple[LimitSpec, ...] = ()
    budgets: tuple[BudgetSpec, ...] = ()
    timeouts: tuple[TimeoutSpec, ...] = ()
    breakers: tuple[BreakerSpec, ...] = ()
    concurrency: tuple[ConcurrencySpec, ...] = ()
    result_bounds: tuple[BoundsSpec, ...] = ()
    default_timeout: Seconds = 60.0


_MODELS: dict[str, type[_Model]] = {
    "limits": LimitSpec,
    "budgets": BudgetSpec,
    "timeouts": TimeoutSpec,
    "breakers": BreakerSpec,
    "concurrency": ConcurrencySpec,
    "result_bounds": BoundsSpec,
}


def parse_limit_specs(specs: Iterable[RawSpec], *, default_timeout: float = 60.0) -> ControlsConfig:
    """Validate every control item and build a :class:`ControlsConfig`.

    Raises:
        ConfigError: with one ``file:line: kind[id].key: message`` per problem, all at once.
    """
    problems: list[str] = []
    parsed: dict[str, list[Any]] = {k: [] for k in KINDS}
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        kind = spec.kind
        where = f"{spec.file}:{spec.line}"
        model = _MODELS.get(kind)
        if model is None:
            problems.append(f"{where}: unknown control kind '{kind}' (expected one of {', '.join(KINDS)})")
            continue
        items = spec.data if isinstance(spec.data, list) else [spec.data]
        for index, item in enumerate(items):
            label = f"{kind}[{item.get('id', index) if isinstance(item, dict) else index}]"
            if not isinstance(item, dict):
                problems.append(f"{where}: {label}: expected a mapping, got {type(item).__name__}")
                continue
            try:
                value = model.model_validate(item)
            except ValidationError as exc:
                problems.extend(_format(where, label, exc))
                continue
            ident = getattr(value, "id", None)
            if ident is not None:
                if (kind, ident) in seen:
                    problems.append(
                        f"{where}: {label}: duplicate id '{ident}' (first defined at {seen[kind, ident]})"
                    )
                    continue
                seen[kind, ident] = where
            parsed[kind].append(value)
    if problems:
        raise ConfigError(problems)
    return ControlsConfig(
        default_timeout=default_timeout,
        **{kind: tuple(values) for kind, values in parsed.items()},
    )


def _format(where: str, label: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(f"{where}: {label}{'.' + loc if loc else ''}: {msg}")
    return out
