"""Operational controls: rate limits, budgets, concurrency caps, timeouts, breakers, result bounds.

The gateway uses :class:`Controls`; configuration comes from the policy files through
:func:`parse_limit_specs`; state lives behind :class:`ControlState`. docs/controls.md is
the reference.
"""

from mcp_guard.controls.bounds import (
    DEFAULT_READ_LIMIT,
    BoundsOutcome,
    ByteBudget,
    ResultTooLarge,
    bound_result,
    read_limit,
)
from mcp_guard.controls.breaker import BreakerListener, BreakerRecord, BreakerState, BreakerTransition
from mcp_guard.controls.budgets import period_window
from mcp_guard.controls.clock import Clock, Instant, SystemClock
from mcp_guard.controls.concurrency import ConcurrencyRefused, ControlRefused, Slot
from mcp_guard.controls.config import (
    BoundsSpec,
    BreakerSpec,
    BudgetSpec,
    ConcurrencySpec,
    ControlsConfig,
    LimitSpec,
    RawSpec,
    TimeoutSpec,
    parse_limit_specs,
)
from mcp_guard.controls.facade import Admission, BreakerSnapshot, Controls
from mcp_guard.controls.plans import ControlCall
from mcp_guard.controls.sqlite_state import EmbeddedState, open_embedded_state
from mcp_guard.controls.state import ChargeNotRecorded, ControlState, MemoryState, Usage

__all__ = [
    "DEFAULT_READ_LIMIT",
    "Admission",
    "BoundsOutcome",
    "BoundsSpec",
    "BreakerListener",
    "BreakerRecord",
    "BreakerSnapshot",
    "BreakerSpec",
    "BreakerState",
    "BreakerTransition",
    "BudgetSpec",
    "ByteBudget",
    "ChargeNotRecorded",
    "Clock",
    "ConcurrencyRefused",
    "ConcurrencySpec",
    "ControlCall",
    "ControlRefused",
    "ControlState",
    "Controls",
    "ControlsConfig",
    "EmbeddedState",
    "Instant",
    "LimitSpec",
    "MemoryState",
    "RawSpec",
    "ResultTooLarge",
    "Slot",
    "SystemClock",
    "TimeoutSpec",
    "Usage",
    "bound_result",
    "open_embedded_state",
    "parse_limit_specs",
    "period_window",
    "read_limit",
]
