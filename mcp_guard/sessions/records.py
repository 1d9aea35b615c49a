"""What a session remembers: one :class:`CallRecord` per call, one :class:`Taint` per tainted result.

Records keep both clocks: ``at`` is the wall time (an aware datetime, which windows in
policies and risk correlation use) and ``mono`` the monotonic reading stamped by the
session when the record is stored (ordering, idle expiry). ``ts`` caches ``at`` as
epoch seconds so window scans compare floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mcp_guard.decision import Decision
from mcp_guard.findings import Severity

SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


def epoch(at: datetime) -> float:
    """``at`` as UTC epoch seconds; a naive datetime is read as UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One governed call of a session.

    ``decision`` is the decision the gateway reached (``None`` when recorded before a
    decision exists); ``shape`` is :func:`~mcp_guard.sessions.shape.argument_shape` of
    the arguments; ``finding_types`` are the types of the findings in the arguments.
    """

    tool: str
    at: datetime
    upstream: str = ""
    actions: frozenset[str] = frozenset()
    decision: Decision | None = None
    shape: str = ""
    finding_types: frozenset[str] = frozenset()
    mono: float = math.nan
    ts: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", epoch(self.at))

    @property
    def blocked(self) -> bool:
        """Whether the gateway refused the call (BLOCK)."""
        return self.decision is Decision.BLOCK


@dataclass(frozen=True, slots=True)
class Taint:
    """Findings seen in the result of ``tool`` at ``at``: the session has now *seen* this data.

    ``categories`` and ``types`` summarise the findings; ``severity`` is the highest one.
    """

    tool: str
    at: datetime
    categories: frozenset[str]
    types: frozenset[str]
    severity: Severity
    mono: float = math.nan
    ts: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", epoch(self.at))

    @property
    def rank(self) -> int:
        """``severity`` as 1 (low) to 4 (critical)."""
        return SEVERITY_RANK[self.severity]
