"""Evaluate: a compiled policy set deciding calls and tool visibility.

Semantics (docs/policies.md has the long form):

1. Candidate rules for the tool name come from an index (exact names, glob prefixes,
   catch-alls), cached per name, already in evaluation order: priority (lower first),
   then scope specificity (user > agent > role > team > tenant > org), then file
   name and position in the file.
2. Every candidate whose scope, match and conditions hold is *matched* (the explanation
   lists them all). The first matched non-shadow rule decides (first match wins); a
   non-shadow HIDE rule that matched hides the tool, which refuses the call whatever
   other rules say. Without a deciding rule the set's ``default`` applies.
3. The risk thresholds turn the risk score into a decision; the more severe of the rule
   part and the risk part wins, unless the deciding rule says ``override_risk: true``.
4. External engines (Rego) add their decisions; the most severe wins.
5. The shadow verdict repeats steps 2-4 as if shadow rules were live, when any matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mcp_guard.controls.config import RawSpec
from mcp_guard.decision import Decision, Verdict
from mcp_guard.policy.actions import ActionClassifier
from mcp_guard.policy.compiler import CompiledRule
from mcp_guard.policy.index import CACHE_LIMIT, RuleIndex
from mcp_guard.policy.operators import UndecidableValue
from mcp_guard.policy.types import PolicyRequest, PolicyResult, ToolInfo
from mcp_guard.principal import Principal

DEFAULT_THRESHOLDS: Mapping[Decision, float] = {
    Decision.BLOCK: 90.0,
    Decision.APPROVAL_REQUIRED: 70.0,
    Decision.WARN: 50.0,
}
RISK_RULE = "risk-threshold"


@dataclass(frozen=True)
class EngineOutcome:
    """What an external engine (Rego) decided for one request."""

    decision: Decision
    rules: tuple[str, ...]
    reason: str
    source: str


class ExternalEngine(Protocol):
    name: str

    def decide(self, req: PolicyRequest) -> EngineOutcome:
        """Decide ``req``; must not raise (fail closed with BLOCK instead)."""
        ...


def _policy_error(req: PolicyRequest, reason: str) -> PolicyResult:
    """BLOCK: evaluation failed, so the call is refused (fail closed) with ``reason``."""
    return PolicyResult(
        verdict=Verdict(decision=Decision.BLOCK, rules=("policy-error",), reason=reason, risk=req.risk),
        reasons=(reason,),
    )


class PolicySet:
    """An immutable, compiled set of policies. Thread-safe for evaluation."""

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        *,
        default: Decision = Decision.ALLOW,
        risk_thresholds: Mapping[Decision, float] = DEFAULT_THRESHOLDS,
        classifier: ActionClassifier | None = None,
        engines: Sequence[ExternalEngine] = (),
        limit_specs: Sequence[RawSpec] = (),
        warnings: Sequence[str] = (),
        files: Sequence[str] = (),
        digest: str = "",
    ) -> None:
        self.rules: tuple[CompiledRule, ...] = tuple(sorted(rules, key=lambda r: r.sort_key))
        self.default = default
        self.risk_thresholds = dict(risk_thresholds)
        self.classifier = classifier or ActionClassifier()
        self.engines = tuple(engines)
        self.limit_specs: list[RawSpec] = list(limit_specs)
        self.warnings: list[str] = list(warnings)
        self.files = tuple(files)
        self.digest = digest  # SHA-256 of the policy files, for audit records
        self._thresholds = sorted(self.risk_thresholds.items(), key=lambda kv: -kv[0].severity)
        self._index = RuleIndex(self.rules)
        self._hiders: dict[str, tuple[CompiledRule, ...]] = {}
        self.visibility_reads_clock = any(r.hides and not r.shadow and r.reads_clock for r in self.rules)
        """Whether :meth:`visible` may change its answer with ``now`` alone (a live HIDE rule
        has a ``time`` condition); otherwise it depends on the principal and the tool only."""

    # -- public API -----------------------------------------------------------------

    def classify(self, tool_name: str, annotations: Mapping[str, Any] | Any = None) -> frozenset[str]:
        """Action classes of a tool: configured globs first, then annotation hints."""
        return self.classifier.classify(tool_name, annotations)

    def visible(self, principal: Principal, tool: ToolInfo, now: datetime) -> bool:
        """Whether ``principal`` may see ``tool`` in tools/list (no non-shadow HIDE rule holds)."""
        hiders = self._hiders.get(tool.name)
        if hiders is None:
            hiders = tuple(r for r in self.candidates(tool.name) if r.hides and not r.shadow)
            if len(self._hiders) >= CACHE_LIMIT:
                self._hiders.clear()
            self._hiders[tool.name] = hiders
        if not hiders:
            return True
        req = PolicyRequest(principal=principal, tool=tool, now=now)
        return not any(r.applies(req) and r.cond(req) for r in hiders)

    def evaluate(self, req: PolicyRequest, outcomes: Sequence[EngineOutcome] | None = None) -> PolicyResult:
        """Decide ``req``. Never raises: an internal error yields BLOCK (fail closed).

        ``outcomes``: what the external engines decided for ``req``, when the caller asked
        them already (:meth:`ask_engines`, e.g. off the event loop); else they are asked here.
        """
        try:
            return self._evaluate(req, outcomes)
        except UndecidableValue as exc:
            return _policy_error(req, f"policies cannot decide this call: {exc}")
        except Exception as exc:  # top-level boundary of the policy engine: fail closed
            return _policy_error(
                req, f"internal error while evaluating policies: {type(exc).__name__}: {exc}"
            )

    def candidates(self, tool_name: str) -> tuple[CompiledRule, ...]:
        """Rules whose tool patterns accept ``tool_name``, in evaluation order."""
        return self._index.by_name(tool_name)

    def rule(self, rule_id: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    # -- evaluation -------------------------------------------------------------------

    def ask_engines(self, req: PolicyRequest) -> list[EngineOutcome]:
        """What each external engine (Rego) decides for ``req``; they may block for a while."""
        return [engine.decide(req) for engine in self.engines]

    def _evaluate(self, req: PolicyRequest, outcomes: Sequence[EngineOutcome] | None) -> PolicyResult:
        matched = [
            r
            for r in self._index.candidates(req.tool, req.principal)
            if (r.scope_check is None or r.scope_check(req.principal)) and r.cond(req)
        ]
        risk_decision, risk_reason = self._risk(req.risk)
        if outcomes is None:
            outcomes = self.ask_engines(req)
        live = [r for r in matched if not r.shadow]
        risk = (risk_decision, risk_reason)
        result = self._combine(req, rules=live, matched=matched, risk=risk, outcomes=outcomes)
        if len(live) == len(matched):
            return result
        shadow = self._combine(req, rules=matched, matched=matched, risk=risk, outcomes=outcomes)
        return PolicyResult(
            verdict=result.verdict,
            shadow=shadow.verdict,
            matched=result.matched,
            deciding_rule=result.deciding_rule,
            risk_decision=result.risk_decision,
            reasons=result.reasons,
            hidden=result.hidden,
            approval=result.approval,
        )

    def _risk(self, risk: float | None) -> tuple[Decision | None, str]:
        if risk is None:
            return None, ""
        for decision, threshold in self._thresholds:
            if risk >= threshold:
                return decision, f"risk score {risk:g} reached the {decision.value} threshold ({threshold:g})"
        return Decision.ALLOW, ""

    def _combine(
        self,
        req: PolicyRequest,
        *,
        rules: list[CompiledRule],
        matched: list[CompiledRule],
        risk: tuple[Decision | None, str],
        outcomes: Sequence[EngineOutcome],
    ) -> PolicyResult:
        risk_decision, risk_reason = risk
        score = None if req.risk is None else float(req.risk)
        matched_ids = tuple(r.id for r in matched) + tuple(i for o in outcomes for i in o.rules)
        hiders = [r for r in rules if r.hides]
        details: dict[str, Any] = {"matched": list(matched_ids)}
        if req.risk_factors:
            details["risk_factors"] = dict(req.risk_factors)
        if hiders:
            reason = f"unknown tool: {req.tool.name} (hidden by rule '{hiders[0].id}')"
            details.update(source="hidden", hidden=True)
            verdict = Verdict(
                decision=Decision.BLOCK, rules=(hiders[0].id,), reason=reason, risk=score, details=details
            )
            return PolicyResult(verdict, None, matched_ids, hiders[0].id, risk_decision, (reason,), True)
        deciding = next((r for r in rules if not r.hides), None)
        if deciding is not None:
            decision, source = Decision(deciding.decision), "rule"
            ids, reasons = [deciding.id], [deciding.explanation]
        else:
            decision, source = self.default, "default"
            ids, reasons = [], [f"no rule matched; default {self.default.value}"]
        overridden = deciding is not None and deciding.override_risk
        if risk_decision is not None and risk_decision.severity > decision.severity and not overridden:
            decision, source = risk_decision, "risk"
            ids, reasons = [RISK_RULE], [risk_reason]
        elif risk_reason and risk_decision is not None and risk_decision.severity > Decision.ALLOW.severity:
            reasons.append(risk_reason + (" (overridden by the rule)" if overridden else ""))
        for outcome in outcomes:
            if outcome.decision.severity > decision.severity:
                decision, source = outcome.decision, outcome.source
                ids, reasons = list(outcome.rules), [outcome.reason]
            elif outcome.decision.severity == decision.severity and outcome.decision != Decision.ALLOW:
                ids += [i for i in outcome.rules if i not in ids]
        details.update(source=source, deciding_rule=deciding.id if deciding else None)
        if risk_decision is not None:
            details["risk_decision"] = risk_decision.value
        if req.findings:
            details["findings"] = sorted({f.type for f in req.findings})
        verdict = Verdict(
            decision=decision, rules=tuple(ids), reason="; ".join(reasons), risk=score, details=details
        )
        approval = None
        if decision == Decision.APPROVAL_REQUIRED and source == "rule" and deciding is not None:
            approval = deciding.approval
        return PolicyResult(
            verdict,
            None,
            matched_ids,
            deciding.id if deciding else None,
            risk_decision,
            tuple(reasons),
            False,
            approval,
        )
