"""Detection quality of mcp_guard.inspection on the labelled development corpus.

Usage: .venv/bin/python benchmarks/detection_quality.py [--corpus DIR] [--split all|tune|holdout|both]

The corpus items are split deterministically (SHA-1 of the id) into a 70% tuning part and
a 30% hold-out part, so tuning on one and checking on the other is possible.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mcp_guard.inspection import InspectionConfig, Inspector, scan_tool_definition

REPO = Path(__file__).resolve().parent.parent
TYPE_MAP = {
    "AWS_ACCESS_KEY": "API_KEY",
    "GITHUB_TOKEN": "API_KEY",
    "SLACK_TOKEN": "API_KEY",
    "SENDGRID_API_KEY": "API_KEY",
    "GITLAB_TOKEN": "API_KEY",
    "STRIPE_KEY": "API_KEY",
    "OPENAI_API_KEY": "API_KEY",
    "ANTHROPIC_API_KEY": "API_KEY",
    "GCP_API_KEY": "API_KEY",
    "SLACK_WEBHOOK": "API_KEY",
    "AWS_SECRET_KEY": "SECRET",
    "JWT": "SECRET",
    "PRIVATE_KEY": "SECRET",
    "GENERIC_SECRET": "SECRET",
    "CONNECTION_STRING_PASSWORD": "SECRET",
    "GCP_SERVICE_ACCOUNT_KEY": "SECRET",
}
ATTACK_TYPES = {
    "sqli": "SQL_INJECTION",
    "shell": "SHELL_INJECTION",
    "path_traversal": "PATH_TRAVERSAL",
    "xss": "XSS",
    "ssrf": "SSRF",
}


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def in_split(item_id: str, split: str) -> bool:
    if split == "all":
        return True
    tune = int(hashlib.sha1(item_id.encode()).hexdigest()[:8], 16) % 10 < 7
    return tune if split == "tune" else not tune


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def table(title: str, header: list[str], rows: Iterable[list[str]]) -> None:
    rows = list(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def injection(items: list[dict[str, Any]], inspector: Inspector, verbose: bool) -> None:
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_cat_any: dict[str, int] = defaultdict(int)
    for item in items:
        findings = inspector.scan_text(item["text"])
        hit = any(f.type == "PROMPT_INJECTION" for f in findings)
        hit_any = hit or any(f.category == "evasion" for f in findings)
        key = item["category"]
        by_cat[key][0] += int(hit)
        by_cat[key][1] += 1
        by_cat_any[key] += int(hit_any)
        if verbose and hit != bool(item["label"]):
            tag = "FN" if item["label"] else "FP"
            print(tag, key, item.get("source"), repr(item["text"][:160]), [f.detail for f in findings][:3])
    pos = [c for c in by_cat if c not in ("benign", "benign_hard_negative")]
    rows = []
    for c in sorted(by_cat):
        n_hit, n = by_cat[c]
        label = "recall" if c in pos else "FP rate"
        rows.append([c, str(n), label, f"{n_hit / n:.3f}", f"{by_cat_any[c] / n:.3f}"])
    tp = sum(by_cat[c][0] for c in pos)
    fn = sum(by_cat[c][1] - by_cat[c][0] for c in pos)
    fp = sum(by_cat[c][0] for c in by_cat if c not in pos)
    neg = sum(by_cat[c][1] for c in by_cat if c not in pos)
    p, r, f = prf(tp, fp, fn)
    rows.append(["ALL attacks", str(tp + fn), "recall", f"{r:.3f}", ""])
    rows.append(["ALL benign", str(neg), "FP rate", f"{fp / max(neg, 1):.3f}", ""])
    rows.append(["overall", str(tp + fn + neg), "P / R / F1", f"{p:.3f} / {r:.3f} / {f:.3f}", ""])
    table(
        "Prompt injection (PROMPT_INJECTION finding; last column: injection or evasion finding)",
        ["category", "n", "metric", "value", "inj|evasion"],
        rows,
    )


def pii(items: list[dict[str, Any]], inspector: Inspector, verbose: bool) -> None:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
    fp_records = 0
    negatives = 0
    for item in items:
        text = item["text"]
        gold = [(s["type"], s["start"], s["end"]) for s in item["spans"]]
        pred = []
        for f in inspector.scan_text(text):
            if f.category in ("pii", "secret") and f.start is not None and f.end is not None:
                pred.append((TYPE_MAP.get(f.type, f.type), f.start, f.end))
        used: set[int] = set()
        for g_type, gs, ge in gold:
            match = next(
                (
                    i
                    for i, (t, s, e) in enumerate(pred)
                    if i not in used and t == g_type and s < ge and gs < e
                ),
                None,
            )
            if match is None:
                counts[g_type][2] += 1
                if verbose and g_type != "PERSON":
                    print("FN", g_type, repr(text[gs:ge]), "|", repr(text[:120]))
            else:
                used.add(match)
                counts[g_type][0] += 1
        for i, (t, s, e) in enumerate(pred):
            if i not in used:
                counts[t][1] += 1
                if verbose:
                    print("FP", t, repr(text[s:e]), "|", repr(text[:120]))
        if not gold:
            negatives += 1
            fp_records += int(bool(pred))
    rows = []
    total = [0, 0, 0]
    for t in sorted(counts):
        tp, fp, fn = counts[t]
        precision, recall, f1 = prf(tp, fp, fn)
        rows.append([t, str(tp + fn), f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}"])
        if t != "PERSON":
            total = [total[0] + tp, total[1] + fp, total[2] + fn]
    precision, recall, f1 = prf(*total)
    rows.append(
        ["ALL except PERSON", str(total[0] + total[2]), f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}"]
    )
    rows.append(["negatives flagged", str(negatives), "", "", f"{fp_records / max(negatives, 1):.3f}"])
    table("PII and secrets (span overlap, same type)", ["type", "gold", "precision", "recall", "F1"], rows)


def payloads(items: list[dict[str, Any]], inspector: Inspector, verbose: bool) -> None:
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # any-attack hits, right-type hits, n
    for item in items:
        findings = [f for f in inspector.scan(item["tool_args"], "$") if f.category == "attack"]
        c = item["category"]
        stats[c][0] += int(bool(findings))
        stats[c][1] += int(any(f.type == ATTACK_TYPES.get(c) for f in findings))
        stats[c][2] += 1
        if verbose and bool(findings) != bool(item["label"]):
            print(
                "FN" if item["label"] else "FP",
                c,
                json.dumps(item["tool_args"])[:160],
                [f.detail for f in findings],
            )
    rows = []
    tp = fn = 0
    for c in sorted(stats):
        hits, right, n = stats[c]
        if c == "benign":
            rows.append([c, str(n), "FP rate", f"{hits / n:.3f}", ""])
        else:
            tp += hits
            fn += n - hits
            rows.append([c, str(n), "recall", f"{hits / n:.3f}", f"{right / n:.3f}"])
    rows.append(["ALL attacks", str(tp + fn), "recall", f"{tp / max(tp + fn, 1):.3f}", ""])
    table("Argument attacks", ["category", "n", "metric", "value", "right type"], rows)


def poisoning(items: list[dict[str, Any]], verbose: bool) -> None:
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        findings = scan_tool_definition(item["tool"])
        c = item["category"]
        stats[c][0] += int(bool(findings))
        stats[c][1] += 1
        if verbose and bool(findings) != bool(item["label"]):
            print(
                "FN" if item["label"] else "FP",
                c,
                json.dumps(item["tool"])[:200],
                [f.detail for f in findings],
            )
    rows = []
    tp = fn = 0
    for c in sorted(stats):
        hits, n = stats[c]
        if c == "benign":
            rows.append([c, str(n), "FP rate", f"{hits / n:.3f}"])
        else:
            tp += hits
            fn += n - hits
            rows.append([c, str(n), "recall", f"{hits / n:.3f}"])
    rows.append(["ALL poisoned", str(tp + fn), "recall", f"{tp / max(tp + fn, 1):.3f}"])
    table(
        "Tool poisoning (any finding from scan_tool_definition)", ["category", "n", "metric", "value"], rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "dev")
    parser.add_argument("--split", choices=["all", "tune", "holdout", "both"], default="both")
    parser.add_argument("--verbose", action="store_true", help="print every miss and false alarm")
    args = parser.parse_args()
    splits = ["tune", "holdout"] if args.split == "both" else [args.split]
    full = Inspector(InspectionConfig())
    pii_only = Inspector(InspectionConfig(categories=frozenset({"pii", "secret"})))
    attacks_only = Inspector(InspectionConfig(categories=frozenset({"attack"})))
    data = {
        name: load(args.corpus / f"{name}.jsonl")
        for name in ("injection", "pii", "payloads", "tool_poisoning")
    }
    for split in splits:
        print(f"\n# split: {split}")
        pick = {k: [x for x in v if in_split(x["id"], split)] for k, v in data.items()}
        injection(pick["injection"], full, args.verbose)
        pii(pick["pii"], pii_only, args.verbose)
        payloads(pick["payloads"], attacks_only, args.verbose)
        poisoning(pick["tool_poisoning"], args.verbose)


if __name__ == "__main__":
    main()
