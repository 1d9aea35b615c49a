"""Risk configuration: the documented example loads, mistakes are named."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mcp_guard.findings import Severity
from mcp_guard.risk import RiskConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "risk.md"


def test_the_configuration_reference_in_the_docs_loads() -> None:
    text = DOCS.read_text()
    block = re.search(r"```yaml\n(risk:\n.*?)```", text, re.S)
    assert block is not None
    config = RiskConfig.model_validate(yaml.safe_load(block.group(1))["risk"])
    assert config.temporal.business_hours.start == time(8, 0)
    assert config.payload.severity_scores[Severity.HIGH] == 75
    assert config.environment.internal_domains == frozenset({"corp.example"})


def test_defaults_are_valid() -> None:
    assert RiskConfig().thresholds.block == 90


def test_an_unknown_time_zone_is_named() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        RiskConfig.model_validate({"temporal": {"business_hours": {"tz": "Mars/Olympus"}}})


def test_weekdays_out_of_range_are_named() -> None:
    with pytest.raises(ValidationError, match=r"weekdays must be 0 \(Monday\) to 6 \(Sunday\), got \[7\]"):
        RiskConfig.model_validate({"temporal": {"business_hours": {"days": [0, 7]}}})


def test_rate_ratios_must_increase() -> None:
    with pytest.raises(ValidationError, match="rate_ratio_full"):
        RiskConfig.model_validate({"behaviour": {"rate_ratio_start": 5, "rate_ratio_full": 3}})


def test_internal_domains_match_case_insensitively() -> None:
    config = RiskConfig.model_validate({"environment": {"internal_domains": ["Corp.Example."]}})
    assert config.environment.internal_domains == frozenset({"corp.example"})
