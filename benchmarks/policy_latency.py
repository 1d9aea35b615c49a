"""Decision latency of the policy engine for 10 to 10,000 rules (YAML and Rego).

Run: ``.venv/bin/python benchmarks/policy_latency.py [--decisions 20000] [--rego-max 1000]``

The generated policy looks like a large real deployment: a fixed core of org-wide
rules (the finance example, secrets, injection, risk) plus N per-tool and per-upstream
rules over 1,000 tools, with argument comparisons, regexes, principal and time
conditions. Requests hit random tools with random arguments and findings. Timings are
warm, single-threaded, inline (no thread hand-off), measured per ``evaluate`` call.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mcp_guard.findings import Finding, Severity
from mcp_guard.policy import PolicyRequest, PolicySet, ToolInfo, load_policy_dir
from mcp_guard.principal import Principal

UPSTREAMS = [f"u{i}" for i in range(50)]
TOOLS = [f"{u}__t{j}" for u in UPSTREAMS for j in range(20)]
DECISIONS = ["ALLOW", "MONITOR_ONLY", "WARN", "APPROVAL_REQUIRED", "BLOCK"]

CORE = """
default: ALLOW
risk_thresholds: {BLOCK: 90, APPROVAL_REQUIRED: 70, WARN: 50}
rules:
  - id: block-ssn
    priority: 10
    match: {tools: ["*"]}
    when: {findings: {any: [US_SSN]}}
    decision: BLOCK
  - id: block-secrets
    priority: 5
    when: {findings: {categories: [secret]}}
    decision: BLOCK
  - id: block-injection
    priority: 5
    when: {findings: {categories: [injection], min_severity: high}}
    decision: BLOCK
  - id: interns-office-hours
    priority: 30
    scope: {role: intern}
    match: {actions: [write, delete]}
    when: {time: {outside: "08:00-20:00", days: "mon-fri", tz: "Europe/Berlin"}}
    decision: BLOCK
  - id: high-threat
    priority: 40
    when: {risk.factors.threat: {gte: 80}}
    decision: APPROVAL_REQUIRED
"""


def rule_yaml(i: int, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.75:
        match = f'{{tools: ["{rng.choice(TOOLS)}"]}}'
    else:
        match = f'{{tools: ["{rng.choice(UPSTREAMS)}__*"]}}'
    cond = rng.choice(
        [
            f"{{args.amount: {{gt: {rng.randint(10, 5000)}}}}}",
            '{args.text: {regex: "(?i)\\\\b(drop|delete)\\\\b"}, '
            f"principal.roles: {{not_contains: admin{i}}}}}",
            f'{{"args.items[*].qty": {{gte: {rng.randint(1, 50)}}}}}',
            f"{{principal.teams: {{contains: team{rng.randint(0, 20)}}}}}",
            '{time: {inside: "22:00-06:00", tz: "Europe/Berlin"}, '
            f"args.amount: {{gt: {rng.randint(1, 9)}}}}}",
            "{any: [{args.mode: delete}, {args.mode: drop}]}",
        ]
    )
    scope = rng.choice(
        ["", f"\n    scope: {{team: team{rng.randint(0, 20)}}}", "\n    scope: {role: analyst}"]
    )
    return (
        f"  - id: r{i}\n    priority: {rng.randint(50, 500)}{scope}\n    match: {match}\n"
        f"    when: {cond}\n    decision: {rng.choice(DECISIONS)}\n"
    )


def build_yaml(folder: Path, n: int, rng: random.Random) -> PolicySet:
    (folder / "core.yaml").write_text(CORE)
    body = "".join(rule_yaml(i, rng) for i in range(max(0, n - 5)))
    (folder / "generated.yaml").write_text("rules:\n" + body if body else "rules: []\n")
    return load_policy_dir(folder)


def rego_source(n: int, rng: random.Random) -> str:
    lines = [
        "package mcpguard",
        "",
        "import rego.v1",
        "",
        'default decision := {"decision": "ALLOW", "rules": [], "reason": "no rule matched"}',
        "",
        'decision := {"decision": best.decision, "rules": [best.id], "reason": "matched"} if {',
        "\tcount(hits) > 0",
        "\tlowest := min({h.priority | some h in hits})",
        "\tbest := [h | some h in hits; h.priority == lowest][0]",
        "}",
        "",
        'hits contains {"id": "block-ssn", "decision": "BLOCK", "priority": 10} if {',
        "\tsome f in input.findings",
        '\tf.type == "US_SSN"',
        "}",
        'hits contains {"id": "block-secrets", "decision": "BLOCK", "priority": 5} if {',
        "\tsome f in input.findings",
        '\tf.category == "secret"',
        "}",
    ]
    for i in range(max(0, n - 2)):
        tool = rng.choice(TOOLS)
        decision = rng.choice(DECISIONS)
        if rng.random() < 0.5:
            cond = f"\tinput.arguments.amount > {rng.randint(10, 5000)}"
        else:
            cond = f'\tsome t in input.principal.teams\n\tt == "team{rng.randint(0, 20)}"'
        lines += [
            f'hits contains {{"id": "r{i}", "decision": "{decision}", '
            f'"priority": {rng.randint(50, 500)}}} if {{',
            f'\tinput.tool.name == "{tool}"',
            cond,
            "}",
        ]
    return "\n".join(lines) + "\n"


def requests(count: int, rng: random.Random) -> list[PolicyRequest]:
    base = datetime(2026, 1, 5, 12, tzinfo=UTC)
    out = []
    for _ in range(count):
        tool = rng.choice(TOOLS)
        findings = []
        if rng.random() < 0.05:
            findings.append(
                Finding(type="US_SSN", category="pii", severity=Severity.HIGH, path="$.args.text")
            )
        principal = Principal(
            user=f"user{rng.randint(0, 99)}",
            roles=frozenset(rng.sample(["analyst", "intern", "admin", "finance-admin"], 2)),
            teams=frozenset({f"team{rng.randint(0, 20)}"}),
        )
        out.append(
            PolicyRequest(
                principal=principal,
                tool=ToolInfo(tool, actions=frozenset({rng.choice(["read", "write", "delete"])})),
                now=base + timedelta(minutes=rng.randint(0, 60 * 24 * 7)),
                arguments={
                    "amount": rng.randint(0, 10_000),
                    "text": rng.choice(["select 1", "DROP TABLE x", "hello world " * 5]),
                    "items": [{"qty": rng.randint(0, 60)} for _ in range(3)],
                    "mode": rng.choice(["read", "delete"]),
                },
                findings=findings,
                risk=rng.uniform(0, 100),
                risk_factors={"threat": rng.uniform(0, 100)},
            )
        )
    return out


def measure(policies: PolicySet, reqs: list[PolicyRequest]) -> tuple[float, float]:
    for req in reqs[:2000]:  # warm the per-tool candidate cache
        policies.evaluate(req)
    samples = []
    clock = time.perf_counter_ns
    for req in reqs:
        start = clock()
        policies.evaluate(req)
        samples.append(clock() - start)
    samples.sort()
    p50 = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--rego-max", type=int, default=1_000, help="largest Rego rule count to measure")
    args = parser.parse_args()
    rng = random.Random(7)
    reqs = requests(args.decisions, rng)
    print(f"{'engine':<6} {'rules':>7} {'load ms':>9} {'p50 us':>9} {'p99 us':>9} {'rules/tool':>10}")
    for n in (10, 100, 1_000, 10_000):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            policies = build_yaml(Path(tmp), n, random.Random(n))
            load_ms = (time.perf_counter() - t0) * 1000
            p50, p99 = measure(policies, reqs)
            per_tool = statistics.mean(len(policies.candidates(t)) for t in TOOLS)
            print(f"{'yaml':<6} {n:>7} {load_ms:>9.0f} {p50:>9.1f} {p99:>9.1f} {per_tool:>10.1f}", flush=True)
    for n in (10, 100, 1_000, 10_000):
        if n > args.rego_max:
            break
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "policy.rego").write_text(rego_source(n, random.Random(n)))
            t0 = time.perf_counter()
            policies = load_policy_dir(tmp)
            load_ms = (time.perf_counter() - t0) * 1000
            p50, p99 = measure(policies, reqs[: max(2000, args.decisions // 4)])
            print(f"{'rego':<6} {n:>7} {load_ms:>9.0f} {p50:>9.1f} {p99:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
