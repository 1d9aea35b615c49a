"""Tool poisoning: instructions, shadowing, hidden text and self-promotion in MCP tool definitions.

A tool description should describe the tool. Findings (category ``poisoning``):
``TOOL_POISONING`` (instructions to the model, secrecy, sensitive-data requests, shell
commands, prompt-injection tactics), ``TOOL_SHADOWING`` (rules about *other* tools),
``PREFERENCE_MANIPULATION`` (claims that the model must prefer this tool) and
``HIDDEN_CONTENT`` (invisible characters; their hidden text is decoded and scanned too).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mcp_guard.findings import Finding, Severity
from mcp_guard.inspection.evasion import detect_hidden, hidden_payloads, needs_normalising, normalised_view
from mcp_guard.inspection.hits import Hit, Rule
from mcp_guard.inspection.injection import detect_injection

_POISON = "TOOL_POISONING"
_SHADOW = "TOOL_SHADOWING"
_PREF = "PREFERENCE_MANIPULATION"


def _r(tactic: str, weight: int, pattern: str) -> Rule:
    return Rule(tactic, weight, (), re.compile(pattern))


_RULES: tuple[Rule, ...] = (
    _r(
        "hidden instruction tag",
        2,
        r"<\s*/?\s*(?:important|secret|system|instructions?|hidden|critical|admin|context)\s*>",
    ),
    _r(
        "secrecy toward the user",
        2,
        r"\b(?:do not|don't|never|without)\s+(?:tell|telling|mention|mentioning|inform|informing|notify|not"
        r"ifying|reveal|"
        r"revealing|show|showing|disclose|disclosing|alert|alerting|ask|asking)\w*\s+(?:this\s+|it\s+|anyth"
        r"ing\s+|them\s+|"
        r"about this\s+)?(?:to\s+)?(?:the\s+)?(?:users?|human|anyone|customer)\b",
    ),
    _r(
        "sensitive data request",
        2,
        r"\b(?:read|include|pass|send|provide|attach|append|add|collect|upload|forward|share|copy|put|bcc|c"
        r"c)\b[^.]{0,80}?"
        r"(?:~/\.ssh|id_rsa|\.env\b|\.aws|credentials|api keys?|secret keys?|passwords?|private keys?|conve"
        r"rsation history|"
        r"(?:all )?(?:previous|prior) messages|chat history|system prompt|session tokens?|cookies)",
    ),
    _r(
        "directive to the model",
        2,
        r"\byou (?:must|should|need to|are required to|have to)\s+(?:also\s+|first\s+|always\s+|now\s+|imme"
        r"diately\s+)*"
        r"(?:execute|run|call|access|invoke|visit|modify|change|bcc|forward|fetch)\b",
    ),
    _r(
        "directive to the model",
        1,
        r"\byou (?:must|should|need to|are required to|have to)\s+(?:also\s+|first\s+|always\s+|now\s+)*(?:"
        r"include|add|set|"
        r"send|read|use|display|provide|update|pass|append|copy)\b|\b(?:always|never)\s+(?:answer|reply|res"
        r"pond|tell|say|"
        r"include|add|send|call|use)\b",
    ),
    _r(
        "overrides user intent",
        2,
        r"\bregardless of (?:the )?(?:user|user'?s|what the user|original|their|any)|\bsilently\s+"
        r"(?:modify|modifies|change|changes|set|sets|redirect|redirects|replace|override|add|append|rewrite"
        r"|enable|enables|send|sends|forward|forwards|copy|copies)\b|\bautomatically\s+(?:modif|chang|redire"
        r"ct|"
        r"replac|overrid|rewrit|forward|send|cop(?:y|ies)\s+|adds?\s+(?:a\s+)?(?:bcc|cc|copy|recipient))|"
        r"\balways change\b|\bthe system automatically\b",
    ),
    _r(
        "shell command",
        2,
        r"\bsudo\s|\brm\s+-rf\b|\bcurl\s+(?:-\w+\s+)*(?:\w+\s+)?https?://|\bwget\s+https?://|>>\s*~/|\.bash"
        r"rc|\.zshrc|"
        r"\bchmod\s+[+0-7]|\$\(\w+|\bexecute the following\b|\brun the following command",
    ),
    _r(
        "compliance pressure",
        1,
        r"\b(?:this is|it is)\s+(?:a\s+)?(?:mandatory|required|essential|critical|compulsory|system-level)"
        r"\b|\bmandatory for "
        r"all\b|\bcompliance requirement\b|\b(?:system|security|critical|mandatory|privilege|research|perfo"
        r"rmance|"
        r"compliance|data)\s+(?:[a-z]+\s+){0,2}(?:protocol|update|check|requirement|maintenance|enhancement"
        r"|optimi[sz]ation|"
        r"notice|verification)\s*:",
    ),
    _r(
        "conditional response manipulation",
        2,
        r"\b(?:if|when|whenever)\s+(?:the\s+)?users?\s+(?:asks?|mentions?|requests?|says?|wants?|inquires?|"
        r"queries|types?)\b[^.]{0,80}?\b(?:always|never|you must|you should|tell|answer|reply|respond|say|cl"
        r"aim|"
        r"state|recommend|redirect)\b",
    ),
    _r(
        "redirects to another tool",
        2,
        r"\b(?:tool|function|endpoint|service)\s+(?:has been|is|was)\s+(?:temporarily\s+|permanently\s+|now"
        r"\s+)?"
        r"(?:disabled|deprecated|unavailable|retired|replaced|down|offline)\b[^\n]{0,200}?\b(?:use|call|invo"
        r"ke)\b|"
        r"\byou must (?:first|always|also)\b[^.]{0,100}?\b(?:call|calling|invoke|invoking|use|using)\s+[`'\""
        r"]?"
        r"[a-z]\w*_\w+",
    ),
    _r(
        "external endpoint",
        1,
        r"\b(?:access|send|post|call|visit|log|report|upload|forward)\b[^.]{0,60}https?://",
    ),
)
_PREFERENCE = re.compile(
    r"\b(?:premium|advanced|enhanced|ultimate|superior|improved|upgraded|pro|official|preferred|definitive)"
    r"\s+version\b|"
    r"\bversion with (?:superior|enhanced|advanced|better|cutting-edge|unmatched)|\b(?:better|superior|fast"
    r"er|more "
    r"(?:accurate|reliable|comprehensive))\s+(?:\w+\s+){0,3}(?:than|compared to)\s+(?:the\s+)?(?:standard|o"
    r"ther|original|"
    r"regular|basic|existing|default)|\b(?:always|only)\s+(?:use|prefer|choose|call|select|pick)\s+this too"
    r"l\b|\b(?:use|"
    r"prefer|choose|call) this tool (?:instead|over|rather)|\binstead of (?:using )?(?:the )?(?:other|stand"
    r"ard|original|"
    r"default)\b|\bpinnacle\b|\bunmatched\b|\bunparalleled\b|\bcutting-edge technology\b|\bthe (?:most|only) "
    r"(?:reliable|trustworthy|accurate|comprehensive|preferred) (?:tool|source)\b|\bignore (?:all )?other t"
    r"ools\b|"
    r"\bis the preferred\b|\b(?:the\s+)?(?:best|most reliable|most accurate|most trusted|only reliable)\s+"
    r"(?:and\s+(?:most\s+)?\w+\s+)?(?:\w+\s+)?(?:tool|source|option|api|service)\s+(?:available|there is|"
    r"on the market|you can use)\b"
)
_IDENT = re.compile(r"`([A-Za-z][\w.-]*)`|\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")
_DIRECTIVE = re.compile(
    r"\b(?:must|always|automatically|regardless|instead|never|mandatory|whenever|every time|each time|befor"
    r"e (?:using|"
    r"calling|searching|you)|has been (?:upgraded|updated|optimi[sz]ed|deprecated|replaced|enhanced)|now us"
    r"es|redirect|disabled|unavailable|retired|as an alternative|alternative (?:method|tool))"
)
_CALLS = re.compile(r"\b(?:call|calling|invoke|invoking|use|using|run|running)\s+[`'\"]?[a-z]\w*_\w+")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def _texts(tool: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key in ("name", "title", "description"):
        value = tool.get(key)
        if isinstance(value, str):
            yield f"$.{key}", value
    schema = tool.get("inputSchema")
    stack: list[tuple[Any, str]] = [(schema, "$.inputSchema")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, Mapping):
            for k, v in node.items():
                sub = f"{path}.{k}" if re.fullmatch(r"[A-Za-z_]\w*", str(k)) else f'{path}["{k}"]'
                if isinstance(v, str) and k in ("description", "title", "default", "examples", "const"):
                    yield sub, v
                elif isinstance(v, Mapping | list):
                    stack.append((v, sub))
        elif isinstance(node, list):
            stack += [(v, f"{path}[{i}]") for i, v in enumerate(node)]
    annotations = tool.get("annotations")
    if isinstance(annotations, Mapping):
        for k, v in annotations.items():
            if isinstance(v, str):
                yield f"$.annotations.{k}", v


def _own_names(tool: Mapping[str, Any]) -> set[str]:
    names = {str(tool.get("name", "")).lower()}
    schema = tool.get("inputSchema")
    if isinstance(schema, Mapping) and isinstance(schema.get("properties"), Mapping):
        names.update(str(p).lower() for p in schema["properties"])
    return names


def _shadowing(text: str, own: set[str]) -> tuple[int, int] | None:
    for sentence in _SENTENCE.finditer(text):
        s = sentence.group()
        others = [m for m in _IDENT.finditer(s) if (m.group(1) or m.group(2)).lower() not in own]
        if others and _DIRECTIVE.search(s.lower()):
            return sentence.start(), sentence.end()
    return None


def _analyse(text: str, own: set[str]) -> list[Hit]:
    lowered = text.lower()
    score, tactics, start, end = 0, [], len(text), 0
    for rule in _RULES:
        m = rule.pattern.search(lowered)
        if m:
            score += rule.weight
            tactics.append(rule.tactic)
            start, end = min(start, m.start()), max(end, m.end())
    for h in detect_injection(text):
        score += 2
        tactics.append(h.detail)
        start, end = min(start, h.start or 0), max(end, h.end or len(text))
    hits = []
    shadow = _shadowing(text, own)
    if shadow is not None and (score >= 1 or "tool" in lowered or _CALLS.search(lowered)):
        hits.append(
            Hit(
                _SHADOW,
                "poisoning",
                Severity.HIGH,
                shadow[0],
                shadow[1],
                "rules about another tool's behaviour",
            )
        )
    if score >= 2:
        hits.append(Hit(_POISON, "poisoning", Severity.HIGH, start, end, "; ".join(dict.fromkeys(tactics))))
    pref = _PREFERENCE.search(lowered)
    if pref:
        hits.append(
            Hit(
                _PREF,
                "poisoning",
                Severity.MEDIUM,
                pref.start(),
                pref.end(),
                "claims the model should prefer it",
            )
        )
    return hits


def scan_tool_definition(tool: Mapping[str, Any]) -> list[Finding]:
    """Tool-poisoning findings for one MCP tool definition."""
    own = _own_names(tool)
    findings: list[Finding] = []
    for path, text in _texts(tool):
        hits: list[Hit] = []
        if not text.isascii():
            for h in detect_hidden(text):
                if h.type != "CONFUSABLE":
                    hits.append(Hit("HIDDEN_CONTENT", "poisoning", Severity.HIGH, h.start, h.end, h.detail))
            for payload in hidden_payloads(text):
                for h in _analyse(payload.text, own):
                    hits.append(
                        h.moved(payload.start, payload.end, f"in text hidden by {payload.how}: {h.detail}")
                    )
        if needs_normalising(text):
            view, index = normalised_view(text)
            for h in _analyse(view, own):
                s = index[h.start or 0]
                e = index[(h.end or len(view)) - 1] + 1 if (h.end or 0) > (h.start or 0) else s
                hits.append(h.moved(s, e, h.detail))
        else:
            hits += _analyse(text, own)
        for h in dict.fromkeys(hits):
            findings.append(
                Finding(
                    type=h.type,
                    category=h.category,
                    severity=h.severity,
                    path=path,
                    start=h.start,
                    end=h.end,
                    detail=h.detail,
                )
            )
    return findings
