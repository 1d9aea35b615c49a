"""Compliance report: what the log shows about enforcement, mapped to audit-logging controls.

Figures are computed from the database with SQL aggregates; integrity comes from
:func:`~mcp_guard.audit.verify.verify`. Rendered as Markdown or JSON.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_guard.audit.models import format_time, parse_time
from mcp_guard.audit.schema import open_readonly
from mcp_guard.audit.verify import VerifyReport, verify
from mcp_guard.signing import PublicKeyLike

_REC = "(CASE WHEN json_valid(record) THEN record END)"
"""The record for SQLite's JSON functions, NULL if it is not JSON (an edited entry, which
verify names): one bad record must not abort the whole report with "malformed JSON"."""


def _lenient_text(data: bytes) -> str:
    """Stored text for the report's figures; text that is not UTF-8 (an edited entry,
    which verify names) is shown with replacement characters instead of failing the query."""
    return data.decode("utf-8", "replace")


class Control(BaseModel):
    """One control of one framework: what it asks and which evidence in this log answers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    framework: str
    control: str
    asks: str
    evidence: str
    figures: str


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: int = 0
    first_time: str | None = None
    last_time: str | None = None
    by_kind: dict[str, int] = Field(default_factory=dict)
    by_decision: dict[str, int] = Field(default_factory=dict)
    by_tool: dict[str, dict[str, int]] = Field(default_factory=dict)
    blocked_reasons: dict[str, int] = Field(default_factory=dict)
    approvals: dict[str, int] = Field(default_factory=dict)
    users: int = 0
    agents: int = 0
    with_findings: int = 0


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minimum_days: int
    oldest_entry: str | None
    oldest_age_days: float | None
    pruned_through_seq: int | None


class ComplianceReport(BaseModel):
    """The whole report (``report --format json`` prints exactly this)."""

    model_config = ConfigDict(extra="forbid")

    generated_at: str
    database: str
    summary: Summary
    integrity: VerifyReport
    retention: Retention
    controls: list[Control]


def build_report(
    path: str | Path, public_key: PublicKeyLike, *, retention_days: int, now: datetime
) -> ComplianceReport:
    """Compute the compliance report of the log at ``path``.

    Raises:
        AuditFileError: the database is missing, not an audit log, or unreadable.
        SigningKeyError: ``public_key`` is not an Ed25519 public key.
    """
    integrity = verify(path, public_key)
    conn = open_readonly(path)
    conn.text_factory = _lenient_text  # a tampered log is still reported on, with its problem named
    try:

        def q(sql: str, *params: Any) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        s = Summary()
        s.entries, s.first_time, s.last_time = q("SELECT COUNT(*), MIN(time), MAX(time) FROM entries")[0]
        s.by_kind = dict(q("SELECT kind, COUNT(*) FROM entries GROUP BY kind ORDER BY 2 DESC"))
        dec = "FROM entries WHERE kind = 'decision'"
        s.by_decision = dict(
            q(
                f"SELECT COALESCE(json_extract({_REC}, '$.decision'), '?'), COUNT(*) {dec} "
                "GROUP BY 1 ORDER BY 2 DESC"
            )
        )
        for tool, decision, n in q(
            f"SELECT COALESCE(json_extract({_REC}, '$.tool'), '?'), "
            f"COALESCE(json_extract({_REC}, '$.decision'), '?'),"
            f" COUNT(*) {dec} GROUP BY 1, 2 ORDER BY 1"
        ):
            s.by_tool.setdefault(str(tool), {})[str(decision)] = n
        s.blocked_reasons = dict(
            q(
                f"SELECT COALESCE(json_extract({_REC}, '$.reason'), '?'), COUNT(*) {dec} "
                f"AND json_extract({_REC}, '$.decision') = 'BLOCK' GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
            )
        )
        s.approvals = dict(
            q(
                f"SELECT COALESCE(json_extract({_REC}, '$.status'), '?'), COUNT(*) FROM entries "
                "WHERE kind = 'approval' GROUP BY 1 ORDER BY 2 DESC"
            )
        )
        s.users, s.agents = q(
            f"SELECT COUNT(DISTINCT json_extract({_REC}, '$.principal.user')), "
            f"COUNT(DISTINCT json_extract({_REC}, '$.principal.agent')) {dec}"
        )[0]
        s.with_findings = q(f"SELECT COUNT(*) {dec} AND json_array_length({_REC}, '$.findings') > 0")[0][0]
        pruned = q("SELECT value FROM meta WHERE key = 'pruned_through'") if _has_meta(conn) else []
    finally:
        conn.close()
    age = _age_days(now, s.first_time)
    retention = Retention(
        minimum_days=retention_days,
        oldest_entry=s.first_time,
        oldest_age_days=round(age, 2) if age is not None else None,
        pruned_through_seq=int(pruned[0][0]) if pruned and str(pruned[0][0]).isdigit() else None,
    )
    return ComplianceReport(
        generated_at=format_time(now),
        database=str(path),
        summary=s,
        integrity=integrity,
        retention=retention,
        controls=_controls(s, integrity, retention),
    )


def _age_days(now: datetime, time: str | None) -> float | None:
    """Days from ``time`` (a stored entry time) to ``now``; None if there is none or it is not a time."""
    if not time:
        return None
    try:
        return (now - parse_time(time)) / timedelta(days=1)
    except ValueError:  # an edited entry time, which verify names
        return None


def _has_meta(conn: Any) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone())


def _controls(s: Summary, v: VerifyReport, r: Retention) -> list[Control]:
    decisions = sum(s.by_decision.values())
    blocked = s.by_decision.get("BLOCK", 0)
    held = s.by_decision.get("APPROVAL_REQUIRED", 0)
    integrity = "intact" if v.ok else f"TAMPERED ({v.problem.message if v.problem else '?'})"
    breakers = f"{s.by_kind.get('breaker', 0)} breaker events"
    chain = (
        f"integrity {integrity}; {v.entries} entries hash-chained, "
        f"{v.checkpoints} Ed25519-signed checkpoints "
        f"(key {v.key_id})"
    )
    period = f"{s.first_time or '-'} .. {s.last_time or '-'}"
    retained = f"minimum retention {r.minimum_days} days; oldest entry {r.oldest_entry or '-'}"
    if r.oldest_age_days is not None:
        retained += f" ({r.oldest_age_days:.0f} days old)"
    enforce = f"{decisions} decisions: {blocked} blocked, {held} held for approval"
    users = f"{s.users} users, {s.agents} agents"
    approvals = ", ".join(f"{k}: {n}" for k, n in s.approvals.items()) or "none"
    c = Control
    return [
        c(
            framework="SOC 2",
            control="CC6.1",
            asks="Logical access security: access to protected assets is restricted to authorised users.",
            evidence="decision entries: verified principal (user, agent), tool, rules applied and the "
            "outcome of every call",
            figures=f"{enforce}; {users}",
        ),
        c(
            framework="SOC 2",
            control="CC6.6",
            asks="Logical access from outside the system boundary is controlled and restricted.",
            evidence="every agent tool call crossing the gateway is decided and logged before forwarding",
            figures=f"{decisions} boundary crossings decided; {blocked} blocked",
        ),
        c(
            framework="SOC 2",
            control="CC7.2",
            asks="System components are monitored for anomalies indicative of malicious acts.",
            evidence="findings (PII, secrets, injection) and risk scores recorded per call; breaker events",
            figures=f"{s.with_findings} decisions with findings; {breakers}",
        ),
        c(
            framework="SOC 2",
            control="CC7.3",
            asks="Security events are evaluated to determine whether they are incidents.",
            evidence="blocked calls with reasons and rule ids; human approvals; tamper-evident chain",
            figures=f"{blocked} blocked; approvals: {approvals}; {chain}",
        ),
        c(
            framework="HIPAA",
            control="§164.312(b)",
            asks="Audit controls: record and examine activity in systems that contain or use ePHI.",
            evidence="append-only hash-chained record of every tool call with redacted arguments and digest",
            figures=f"{s.entries} entries over {period}; {chain}",
        ),
        c(
            framework="GDPR",
            control="Art. 30",
            asks="Records of processing activities: who processed which personal data, for what, when.",
            evidence="per-call principal, tool, purpose-bearing rules and PII findings (values redacted)",
            figures=f"{users}; {s.with_findings} calls with findings; {period}",
        ),
        c(
            framework="PCI DSS",
            control="Req. 10",
            asks="Log and monitor all access to system components and cardholder data; protect logs "
            "from alteration; retain at least 12 months (3 online).",
            evidence="user/agent identity, event type, time (UTC), outcome per entry; hash chain + signed "
            "checkpoints (10.3); retention enforced by prune",
            figures=f"{enforce}; {chain}; {retained}",
        ),
        c(
            framework="ISO 27001",
            control="A.8.15",
            asks="Logging: logs recording activities, exceptions and events are produced, stored, "
            "protected and analysed.",
            evidence="decision/outcome/config entries; tamper evidence by verify",
            figures=f"{s.entries} entries; {chain}",
        ),
        c(
            framework="ISO 27001",
            control="A.8.16",
            asks="Monitoring activities: networks, systems and applications are monitored for "
            "anomalous behaviour.",
            evidence="risk scores, findings, blocks and breaker trips per call",
            figures=f"{s.with_findings} with findings; {blocked} blocked; {breakers}",
        ),
        c(
            framework="EU AI Act",
            control="Art. 12",
            asks="Record-keeping: high-risk AI systems automatically log events over their lifetime for "
            "traceability.",
            evidence="every action the AI agent attempted through its tools, with time, inputs (redacted) "
            "and the gateway's decision",
            figures=f"{decisions} agent actions recorded over {period}; {chain}",
        ),
        c(
            framework="EU AI Act",
            control="Art. 19",
            asks="Automatically generated logs are kept for a period appropriate to the purpose, at least "
            "six months.",
            evidence="minimum retention enforced by prune (refuses younger entries); the chain stays "
            "verifiable after pruning",
            figures=retained,
        ),
    ]


def render_markdown(rep: ComplianceReport) -> str:
    """The report as a Markdown document."""
    s, v, r = rep.summary, rep.integrity, rep.retention
    lines = [
        "# mcp-guard audit compliance report",
        "",
        f"Generated {rep.generated_at} from `{rep.database}`.",
        "",
        "## Integrity",
        "",
        f"- Status: **{'INTACT' if v.ok else 'TAMPERED'}** - {v.summary()}",
        *(f"- Warning: {w}" for w in v.warnings),
        "",
        "## Enforcement summary",
        "",
        f"- Entries: {s.entries} ({s.first_time or '-'} .. {s.last_time or '-'})",
        f"- Principals: {s.users} users, {s.agents} agents",
        f"- Decisions with findings: {s.with_findings}",
        "",
        _table(("Decision", "Count"), s.by_decision.items()),
        "",
        _table(("Kind", "Count"), s.by_kind.items()),
        "",
        "### By tool",
        "",
        _table(
            ("Tool", "Decisions"),
            ((t, ", ".join(f"{d}: {n}" for d, n in ds.items())) for t, ds in s.by_tool.items()),
        ),
        "",
        "### Top blocked reasons",
        "",
        _table(("Reason", "Count"), s.blocked_reasons.items()),
        "",
        "### Approvals",
        "",
        _table(("Status", "Count"), s.approvals.items()),
        "",
        "## Retention",
        "",
        f"- Minimum retention: {r.minimum_days} days",
        f"- Oldest entry: {r.oldest_entry or '-'}"
        + (f" ({r.oldest_age_days:.1f} days old)" if r.oldest_age_days is not None else ""),
        f"- Pruned through seq: {'never pruned' if r.pruned_through_seq is None else r.pruned_through_seq}",
        "",
        "## Control mapping",
        "",
    ]
    for c in rep.controls:
        lines += [
            f"### {c.framework} {c.control}",
            "",
            f"- **Asks:** {c.asks}",
            f"- **Evidence in this log:** {c.evidence}",
            f"- **Figures:** {c.figures}",
            "",
        ]
    return "\n".join(lines)


def _table(header: tuple[str, str], rows: Any) -> str:
    body = [f"| {_md(a)} | {_md(b)} |" for a, b in rows]
    if not body:
        body = ["| - | 0 |"]
    return "\n".join([f"| {header[0]} | {header[1]} |", "| --- | --- |", *body])


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
