"""How scores combine: noisy-OR across factors, dominant-plus-spill inside a factor.

Across factors (docs/risk.md has worked examples)::

    score = 100 * (1 - prod_i (1 - w_i * f_i / 100))

Each factor is read as independent evidence that the call is risky; ``w_i * f_i / 100``
is how likely factor ``i`` alone says it is. The composite is the chance that at least
one piece of evidence is right. Properties: a factor with weight 0 never counts; the
composite is never below any single contribution ``w_i * f_i`` (one strong signal
dominates: threat at 100 with weight 0.95 gives at least 95); several moderate signals
compound (two contributions of 40 give 64); the result stays within 0..100.

Inside a factor, several sub-signals (a new tool *and* a rate spike) merge as the
largest plus ``spill`` times the rest, capped at 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mcp_guard.risk.model import FactorScore


def merge(parts: Iterable[float], spill: float) -> float:
    """The largest of ``parts`` plus ``spill`` times the sum of the others, capped at 100."""
    total = 0.0
    top = 0.0
    for part in parts:
        total += part
        top = max(top, part)
    return min(100.0, top + spill * (total - top))


def noisy_or(factors: Iterable[FactorScore]) -> float:
    """The composite 0-100 score of ``factors`` (see the module docstring)."""
    remaining = 1.0
    for factor in factors:
        p = factor.score * factor.weight / 100.0
        remaining *= 1.0 - min(1.0, max(0.0, p))
    return round(100.0 * (1.0 - remaining), 2)


def composite(factors: Mapping[str, FactorScore]) -> tuple[float, tuple[str, ...]]:
    """The composite score of ``factors`` (:func:`noisy_or`) and their reasons as
    ``"<factor>: <reason>"``, the largest contribution first."""
    contributions = ((f.score * f.weight / 100.0, name) for name, f in factors.items())
    ranked = sorted(((p, name) for p, name in contributions if p > 0.0), reverse=True)
    reasons = tuple(f"{name}: {r}" for _, name in ranked for r in factors[name].reasons)
    return noisy_or(factors.values()), reasons
