"""Configuration of the risk score: factor weights, per-factor tuning and thresholds.

Every model forbids unknown keys, so a typo in ``mcp-guard.yaml`` fails loudly at load.
docs/risk.md is the reference for each field.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mcp_guard.findings import Severity
from mcp_guard.risk.baseline import BaselineConfig
from mcp_guard.risk.thresholds import RiskThresholds

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class FactorWeights(BaseModel):
    """How much each factor counts, 0..1: a factor at 100 alone yields ``100 * weight``."""

    model_config = _FROZEN

    action: float = Field(default=0.5, ge=0.0, le=1.0)
    payload: float = Field(default=0.7, ge=0.0, le=1.0)
    temporal: float = Field(default=0.3, ge=0.0, le=1.0)
    environment: float = Field(default=0.4, ge=0.0, le=1.0)
    behaviour: float = Field(default=0.5, ge=0.0, le=1.0)
    correlation: float = Field(default=0.9, ge=0.0, le=1.0)
    threat: float = Field(default=0.95, ge=0.0, le=1.0)


class ActionConfig(BaseModel):
    """Factor 1: the score of each action class; a tool scores its most severe class."""

    model_config = _FROZEN

    scores: dict[str, float] = Field(
        default_factory=lambda: {
            "read": 10.0,
            "write": 40.0,
            "external": 60.0,
            "delete": 70.0,
            "execute": 85.0,
            "privileged": 100.0,
        }
    )
    unclassified: float = Field(default=50.0, ge=0, le=100)
    """Score of a tool with no (or only unknown) action classes."""
    combo_bonus: float = Field(default=5.0, ge=0, le=100)
    """Added per non-read class beyond the first (``write+delete+external`` is worse than ``delete``)."""


_PAYLOAD_TYPES = {
    "US_SSN": 80.0,
    "CREDIT_CARD": 80.0,
    "IBAN": 60.0,
    "EMAIL": 15.0,
    "PHONE": 20.0,
    "IP_ADDRESS": 10.0,
    "PRIVATE_KEY": 95.0,
    "AWS_SECRET_KEY": 95.0,
    "GCP_SERVICE_ACCOUNT_KEY": 95.0,
    "CONNECTION_STRING_PASSWORD": 85.0,
}


class FindingsConfig(BaseModel):
    """Factors 2 and 7: findings of ``categories`` scored by type (first) or severity.

    The factor is the highest finding score plus ``repeat_bonus`` per further finding,
    the bonus capped at ``repeat_cap``.
    """

    model_config = _FROZEN

    categories: frozenset[str]
    severity_scores: dict[Severity, float]
    type_scores: dict[str, float] = Field(default_factory=dict)
    repeat_bonus: float = Field(default=5.0, ge=0, le=100)
    repeat_cap: float = Field(default=20.0, ge=0, le=100)


def _payload_default() -> FindingsConfig:
    return FindingsConfig(
        categories=frozenset({"pii", "secret"}),
        severity_scores={Severity.LOW: 20, Severity.MEDIUM: 45, Severity.HIGH: 75, Severity.CRITICAL: 95},
        type_scores=dict(_PAYLOAD_TYPES),
    )


def _threat_default() -> FindingsConfig:
    return FindingsConfig(
        categories=frozenset({"injection", "attack", "evasion", "poisoning"}),
        severity_scores={Severity.LOW: 30, Severity.MEDIUM: 60, Severity.HIGH: 85, Severity.CRITICAL: 100},
    )


class BusinessHours(BaseModel):
    """Working hours in a time zone: ``days`` are ISO weekdays minus one (0 = Monday)."""

    model_config = _FROZEN

    tz: str = "UTC"
    days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    start: time = time(8, 0)
    end: time = time(19, 0)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}'") from exc
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        bad = sorted(d for d in value if not 0 <= d <= 6)
        if bad:
            raise ValueError(f"weekdays must be 0 (Monday) to 6 (Sunday), got {bad}")
        return value


class TemporalConfig(BaseModel):
    """Factor 3: the agent's usual hours (baseline) or, before warm-up, business hours."""

    model_config = _FROZEN

    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    off_hours_score: float = Field(default=50.0, ge=0, le=100)
    never_seen_score: float = Field(default=80.0, ge=0, le=100)
    """After warm-up: no call by this agent within an hour of this hour-of-week."""
    rare_score: float = Field(default=40.0, ge=0, le=100)
    rare_fraction: float = Field(default=0.005, ge=0, le=1)
    """After warm-up: this hour-of-week (±1 h) holds less than this share of the agent's calls."""


class EnvironmentConfig(BaseModel):
    """Factor 4: the upstream's environment and whether the call targets outside parties."""

    model_config = _FROZEN

    environments: dict[str, float] = Field(
        default_factory=lambda: {
            "prod": 40.0,
            "production": 40.0,
            "staging": 15.0,
            "dev": 5.0,
            "development": 5.0,
            "test": 5.0,
            "local": 0.0,
        }
    )
    unknown_environment: float = Field(default=25.0, ge=0, le=100)
    internal_domains: frozenset[str] = frozenset()
    """Email domains (and their subdomains) that count as internal recipients."""
    internal_hosts: frozenset[str] = frozenset({"localhost"})
    """URL hosts (and their subdomains) that count as internal; private IP literals always do."""
    external_recipient_score: float = Field(default=60.0, ge=0, le=100)
    external_url_score: float = Field(default=50.0, ge=0, le=100)
    recipient_keys: frozenset[str] = frozenset(
        {"to", "cc", "bcc", "recipient", "recipients", "email", "address", "reply_to"}
    )
    """Argument keys whose string values are read as email recipients."""
    url_keys: frozenset[str] = frozenset(
        {"url", "uri", "endpoint", "webhook", "webhook_url", "host", "target"}
    )
    """Argument keys whose string values are read as URLs or host names."""
    max_values: int = Field(default=256, ge=1)
    """At most this many argument strings are examined per call."""

    @field_validator("internal_domains", "internal_hosts", "recipient_keys", "url_keys")
    @classmethod
    def _lower(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(v.lower().strip(".") for v in value)


class BehaviourConfig(BaseModel):
    """Factor 5: how unusual the tool, argument shape and call rate are for this agent."""

    model_config = _FROZEN

    warmup_calls: int = Field(default=50, ge=0)
    """Observed calls before the baseline counts; until then factor 5 is 0 (muted)."""
    new_tool_score: float = Field(default=70.0, ge=0, le=100)
    rare_tool_score: float = Field(default=35.0, ge=0, le=100)
    rare_tool_fraction: float = Field(default=0.01, ge=0, le=1)
    new_shape_score: float = Field(default=40.0, ge=0, le=100)
    rate_window_s: float = Field(default=60.0, gt=0)
    rate_ratio_start: float = Field(default=2.0, ge=1)
    """Calls in the window at this multiple of the agent's typical rate start to score."""
    rate_ratio_full: float = Field(default=10.0, ge=1)
    """... and reach ``rate_max_score`` at this multiple."""
    rate_max_score: float = Field(default=80.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ratios(self) -> BehaviourConfig:
        if self.rate_ratio_full <= self.rate_ratio_start:
            raise ValueError(
                f"rate_ratio_full ({self.rate_ratio_full}) must exceed "
                f"rate_ratio_start ({self.rate_ratio_start})"
            )
        return self


class CorrelationConfig(BaseModel):
    """Factor 6: patterns across the calls of one session (or workflow)."""

    model_config = _FROZEN

    taint_window_s: float = Field(default=1800.0, gt=0)
    taint_categories: frozenset[str] = frozenset({"pii", "secret"})
    sink_actions: frozenset[str] = frozenset({"external"})
    sink_tools: tuple[str, ...] = ()
    """Extra tool globs that count as sinks whatever their action classes."""
    taint_scores: dict[Severity, float] = Field(
        default_factory=lambda: {
            Severity.LOW: 50.0,
            Severity.MEDIUM: 75.0,
            Severity.HIGH: 90.0,
            Severity.CRITICAL: 95.0,
        }
    )
    secret_taint_score: float = Field(default=95.0, ge=0, le=100)
    """A secret seen in a result followed by a sink scores at least this."""
    injection_categories: frozenset[str] = frozenset({"injection", "poisoning"})
    injection_follow_actions: frozenset[str] = frozenset({"external", "execute", "delete", "privileged"})
    injection_follow_score: float = Field(default=70.0, ge=0, le=100)
    exfil_window_s: float = Field(default=300.0, gt=0)
    exfil_min_reads: int = Field(default=3, ge=1)
    exfil_score: float = Field(default=45.0, ge=0, le=100)
    exfil_per_read: float = Field(default=5.0, ge=0, le=100)
    exfil_cap: float = Field(default=75.0, ge=0, le=100)
    delete_window_s: float = Field(default=60.0, gt=0)
    delete_burst: int = Field(default=5, ge=2)
    delete_score: float = Field(default=75.0, ge=0, le=100)
    delete_per_extra: float = Field(default=5.0, ge=0, le=100)
    delete_cap: float = Field(default=95.0, ge=0, le=100)
    blocked_window_s: float = Field(default=600.0, gt=0)
    blocked_count: int = Field(default=3, ge=1)
    blocked_score: float = Field(default=60.0, ge=0, le=100)
    blocked_per_extra: float = Field(default=10.0, ge=0, le=100)
    blocked_cap: float = Field(default=90.0, ge=0, le=100)


class RiskConfig(BaseModel):
    """Everything the :class:`~mcp_guard.risk.scorer.RiskScorer` is tuned by."""

    model_config = _FROZEN

    weights: FactorWeights = Field(default_factory=FactorWeights)
    spill: float = Field(default=0.25, ge=0, le=1)
    """Inside one factor: the top sub-signal counts fully, each other one at this fraction."""
    action: ActionConfig = Field(default_factory=ActionConfig)
    payload: FindingsConfig = Field(default_factory=_payload_default)
    temporal: TemporalConfig = Field(default_factory=TemporalConfig)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)
    correlation: CorrelationConfig = Field(default_factory=CorrelationConfig)
    threat: FindingsConfig = Field(default_factory=_threat_default)
    thresholds: RiskThresholds = Field(default_factory=RiskThresholds)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
