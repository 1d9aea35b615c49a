"""Data-driven policy tests: YAML cases (request -> expected decision) and their runner.

A case file holds ``cases:``, a list of::

    - name: refunds over 1000 need approval for finance staff
      principal: {user: bob, teams: [finance]}
      tool: bank__refund            # or {name, upstream, actions | annotations, environment}
      arguments: {amount: 1500}
      findings: [US_SSN]            # or {type, category, severity, path}
      risk: 20
      risk_factors: {threat: 10}
      time: "2026-03-02T10:00:00+01:00"   # default: Monday 2026-01-05 12:00 UTC
      history: [{tool: db__delete_records, ago: 10s, count: 5}]
      expect: {decision: APPROVAL_REQUIRED, rules: [refund-needs-approval], matched: [...],
               shadow: WARN, visible: true}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from mcp_guard.config.yaml_source import YamlDocument, load_yaml, validation_problems
from mcp_guard.decision import Decision
from mcp_guard.durations import parse_duration
from mcp_guard.errors import ConfigError
from mcp_guard.findings import Finding, Severity
from mcp_guard.policy.engine import PolicySet
from mcp_guard.policy.history import InMemoryHistory
from mcp_guard.policy.types import PolicyRequest, PolicyResult, ToolInfo
from mcp_guard.principal import Principal

DEFAULT_TIME = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MAX_HISTORY_COUNT = 10_000
"""The most calls one ``history`` item of a case may stand for."""
_CATEGORIES = {
    "US_SSN": "pii",
    "CREDIT_CARD": "pii",
    "EMAIL": "pii",
    "EMAIL_ADDRESS": "pii",
    "PHONE": "pii",
    "PHONE_NUMBER": "pii",
    "IBAN": "pii",
    "PROMPT_INJECTION": "injection",
    "SQL_INJECTION": "injection",
    "COMMAND_INJECTION": "injection",
    "ZERO_WIDTH": "evasion",
}


T = TypeVar("T")


def check_risk(value: float) -> float:
    """``value`` if it is a risk score (0 to 100).

    Raises:
        ValueError: out of range or NaN.
    """
    if not 0 <= value <= 100:  # NaN fails too
        raise ValueError(f"a risk score is a number from 0 to 100, not {value!r}")
    return value


def _as_is(check: Callable[[Any], T]) -> Callable[[Any], T]:
    """A pydantic validator that reports ``check``'s ValueError message unchanged."""

    def validate(value: Any) -> T:
        try:
            return check(value)
        except ValueError as exc:
            raise PydanticCustomError("value_error", "{reason}", {"reason": str(exc)}) from None

    return validate


Ago = Annotated[float, BeforeValidator(_as_is(parse_duration))]
Risk = Annotated[float, AfterValidator(_as_is(check_risk))]
ToolName = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseTool(_Model):
    name: ToolName
    upstream: str = ""
    actions: list[str] | None = None
    annotations: dict[str, Any] | None = None
    environment: str | None = None


class CaseFinding(_Model):
    type: str
    category: str | None = None
    severity: Severity = Severity.HIGH
    path: str = "$.args"


class CaseCall(_Model):
    tool: str
    ago: Ago = 0.0
    count: int = Field(default=1, ge=1, le=MAX_HISTORY_COUNT)


class Expect(_Model):
    decision: Decision | None = None
    rules: list[str] | None = None
    matched: list[str] | None = None
    shadow: Decision | None = None
    visible: bool | None = None


class Case(_Model):
    name: str
    principal: Principal
    tool: CaseTool | ToolName
    arguments: dict[str, Any] = Field(default_factory=dict)
    findings: list[CaseFinding | str] = Field(default_factory=list)
    risk: Risk | None = None
    risk_factors: dict[str, float] = Field(default_factory=dict)
    time: datetime = DEFAULT_TIME
    history: list[CaseCall] = Field(default_factory=list)
    expect: Expect

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class CaseFile(_Model):
    cases: list[Case]


@dataclass
class CaseOutcome:
    name: str
    where: str
    failures: list[str] = field(default_factory=list)
    result: PolicyResult | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(folder: str | Path) -> list[tuple[Case, str]]:
    """Every case in ``folder``'s ``*.yaml`` / ``*.yml`` files, with its ``file:line``.

    Raises:
        ConfigError: ``folder`` does not exist, or a case file is malformed (all problems
            at once).
    """
    root = Path(folder)
    if not root.exists():
        raise ConfigError([f"{root}:0: test case folder does not exist"])
    files = [root] if root.is_file() else sorted(p for p in root.glob("*.y*ml") if p.is_file())
    problems: list[str] = []
    out: list[tuple[Case, str]] = []
    for file in files:
        try:
            doc = load_yaml(file)
            parsed = CaseFile.model_validate(doc.data)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        except ValidationError as exc:
            problems.extend(validation_problems(exc, doc, data=doc.data))
            continue
        out += [(case, _where(doc, i)) for i, case in enumerate(parsed.cases)]
    if problems:
        raise ConfigError(problems)
    return out


def _where(doc: YamlDocument, i: int) -> str:
    return doc.where(("cases", i))


def build_request(case: Case, policies: PolicySet) -> PolicyRequest:
    """The :class:`PolicyRequest` a case describes (actions classified by ``policies``)."""
    spec = CaseTool(name=case.tool) if isinstance(case.tool, str) else case.tool
    actions = (
        frozenset(spec.actions)
        if spec.actions is not None
        else policies.classify(spec.name, spec.annotations)
    )
    tool = ToolInfo(spec.name, spec.upstream, actions, spec.environment, spec.annotations)
    history = InMemoryHistory()
    for call in case.history:
        at = case.time - timedelta(seconds=call.ago)
        for _ in range(call.count):
            history.record(call.tool, at)
    return PolicyRequest(
        principal=case.principal,
        tool=tool,
        now=case.time,
        arguments=case.arguments,
        findings=[_finding(f) for f in case.findings],
        risk=case.risk,
        risk_factors=case.risk_factors,
        history=history,
        principal_history=history,
    )


def _finding(f: CaseFinding | str) -> Finding:
    spec = CaseFinding(type=f) if isinstance(f, str) else f
    category = spec.category or _CATEGORIES.get(spec.type) or _guess(spec.type)
    return Finding(type=spec.type, category=category, severity=spec.severity, path=spec.path)


def _guess(kind: str) -> str:
    if any(w in kind for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")):
        return "secret"
    return "injection" if kind.endswith("INJECTION") else "other"


def run_case(case: Case, where: str, policies: PolicySet) -> CaseOutcome:
    """Evaluate one case and compare with its expectations."""
    req = build_request(case, policies)
    result = policies.evaluate(req)
    out = CaseOutcome(case.name, where, result=result)
    exp = case.expect
    if exp.decision is not None and result.decision != exp.decision:
        out.failures.append(f"decision {result.decision.value}, expected {exp.decision.value}")
    if exp.rules is not None and list(result.verdict.rules) != exp.rules:
        out.failures.append(f"rules {list(result.verdict.rules)}, expected {exp.rules}")
    if exp.matched is not None and list(result.matched) != exp.matched:
        out.failures.append(f"matched {list(result.matched)}, expected {exp.matched}")
    if exp.shadow is not None:
        got = result.shadow.decision.value if result.shadow else None
        if got != exp.shadow.value:
            out.failures.append(f"shadow {got}, expected {exp.shadow.value}")
    if exp.visible is not None:
        seen = policies.visible(req.principal, req.tool, req.now)
        if seen != exp.visible:
            out.failures.append(f"visible {seen}, expected {exp.visible}")
    return out


def run_cases(cases: list[tuple[Case, str]], policies: PolicySet) -> list[CaseOutcome]:
    return [run_case(case, where, policies) for case, where in cases]
