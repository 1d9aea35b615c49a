# ruff: noqa: RUF001  (typographic dashes are matched on purpose)
"""Prompt injection in data: behavioural rules over a lowered, normalised view.

Each rule names a tactic and has a weight. A weight-2 rule is enough on its own; weaker
signals (authority claims, secrecy, "in every reply", "from now on" ...) are reported
only when they add up to 2. Rules describe behaviour (an override verb + an instruction
noun, an imperative addressed to the AI, a sensitive object + an outside destination)
rather than fixed phrases. Other languages are in :mod:`injection_i18n`.
"""

from __future__ import annotations

import re

from mcp_guard.findings import Severity
from mcp_guard.inspection.hits import Hit, Rule, contains_any
from mcp_guard.inspection.injection_behaviour import BEHAVIOUR_RULES
from mcp_guard.inspection.injection_i18n import I18N_RULES
from mcp_guard.inspection.injection_vocab import AI as _AI
from mcp_guard.inspection.injection_vocab import DEST as _DEST
from mcp_guard.inspection.injection_vocab import EXFIL_V as _EXFIL_V
from mcp_guard.inspection.injection_vocab import HARD_LIMITS as _HARD_LIMITS
from mcp_guard.inspection.injection_vocab import INSTR as _INSTR
from mcp_guard.inspection.injection_vocab import NEG as _NEG
from mcp_guard.inspection.injection_vocab import OVERRIDE_V as _OVERRIDE_V
from mcp_guard.inspection.injection_vocab import PREV as _PREV
from mcp_guard.inspection.injection_vocab import SENSITIVE as _SENSITIVE
from mcp_guard.inspection.injection_vocab import SOFT_LIMITS as _SOFT_LIMITS
from mcp_guard.inspection.injection_vocab import VERB as _VERB
from mcp_guard.inspection.prefilter import RulePrefilter


def _r(tactic: str, weight: int, gate: tuple[str, ...], pattern: str) -> Rule:
    return Rule(tactic, weight, gate, re.compile(pattern, re.MULTILINE))


# fmt: off
RULES: tuple[Rule, ...] = (
    # --- instruction override
    _r("instruction override", 2,
        ("ignor", "disregard", "forget", "overrid", "bypass", "skip", "discard", "abandon", "neglect",
         "aside", "throw", "follow", "attention", "obey", "nullif", "supersede", "replace"),
        _OVERRIDE_V + r"\b[\w\s,'-]{0,40}?\b" + _PREV + r"\b[\w\s,'-]{0,25}?\b" + _INSTR + r"\b",
    ),
    _r("instruction override", 2,
        ("ignor", "disregard", "forget", "overrid", "bypass", "discard", "neglect"),
        _OVERRIDE_V
        + r"\s+(?:all\s+(?:of\s+)?|any\s+(?:of\s+)?)?(?:your|the ai'?s?|the assistant'?s?)\s+(?:\w+\s+){0,2}?"
        r"(?:instructions|rules|guidelines|programming|training|directives|restrictions|guardrails|policies|"
        r"safety\s+\w+|system prompt|prompt)\b",
    ),
    _r("instruction override", 2,
        ("ignor", "disregard", "forget", "overrid", "discard"),
        _OVERRIDE_V
        + r"\s+(?:all\s+|any\s+)?(?:of\s+)?(?:everything|anything|all|whatever|what)\s+(?:(?:that|which)\s+)?"
        r"(?:(?:was|is|has been|you were|you've been|you have been|i|we)\s+)?(?:\w+\s+)?(?:above|before|ear"
        r"lier|previously|"
        r"so far|until now|up to now|prior|said|written|told|given|stated|instructed)\b",
    ),
    _r("instruction override", 2,
        ("ignor", "disregard", "forget", "overrid"),
        _OVERRIDE_V
        + r"\s+(?:what(?:ever)?\s+the\s+user\s+(?:asked|said|wants|requested|typed)|the\s+user'?s?\s+"
        r"(?:request|instructions?|question|task|query|prompt|message|wishes))",
    ),
    _r("instruction override", 2,
        ("your", "task", "job", "goal", "instructions", "mission", "purpose"),
        r"\byour\s+(?:new|real|actual|true|only|primary|updated|revised)\s+(?:task|job|goal|objective|missi"
        r"on|purpose|"
        r"instructions?|role|directive|priority)\s*(?:is|are|:|now|will be|-)",
    ),
    _r("instruction override", 2,
        ("supersede", "precedence", "override", "replace"),
        r"\b(?:supersedes?|takes? precedence over|overrides?|replaces?)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:u"
        r"ser'?s?|"
        r"your|(?:all\s+)?(?:other|previous|prior|earlier|original)\s+(?:instructions|requests?|tasks?|rule"
        r"s|prompts?))",
    ),
    _r("new instructions marker", 1,
        ("new", "updated", "revised", "priority", "additional"),
        r"\b(?:new|updated|revised|additional|urgent|priority|real)\s+(?:\w+\s+)?(?:instructions?|directive"
        r"s?|rules?|"
        r"tasks?|objectives?|orders)\s*(?::|-|—|,\s*effective)",
    ),
    _r("persistence", 1,
        ("from now on", "from this point", "henceforth", "for the rest", "effective immediately",
         "going forward", "every reply", "every response", "each response", "every answer", "all future"),
        r"\b(?:from now on|from this point (?:on|forward)|henceforth|for the rest of (?:this|the) (?:conver"
        r"sation|"
        r"session|chat)|effective immediately|going forward|in (?:every|each|all|any) (?:future\s+)?(?:repl"
        r"y|replies|"
        r"response|responses|answer|answers|message|output)|all future (?:replies|responses|answers|message"
        r"s))\b",
    ),
    # --- fake system / delimiter markers
    _r("fake system/delimiter marker", 2,
        ("<", "[", "#", "system", "inst"),
        r"<\|?\s*(?:im_start|im_end|system|endoftext|start_header_id|end_header_id|eot_id)\s*\|?>|\[/?inst\]|"
        r"<<\s*/?sys\s*>>|</?\s*(?:system|sys|system_prompt|instructions?|admin|developer|tool_output|tool_"
        r"result|"
        r"function_results|user_query|hidden|important|secret|information)\s*>|^\s*#{2,}\s*(?:system|instruc"
        r"tion|new in"
        r"structions?|"
        r"admin|developer|override)\b|\[\[\s*/?\s*(?:ai|assistant|system|admin)[_ ]?\w*\s*\]\]|"
        r"(?:^|[.:!?]\s+)\[(?:system|admin|developer|assistant[- ]only|ai[- ]only|ai[_ ]instructions?|instru"
        r"ctions?|sys|"
        r"system (?:note|message|override|prompt))\]",
    ),
    _r("fake system/delimiter marker", 1,
        ("end", "begin", "start", "system", "admin"),
        r"[\[\-=#*<(]\s*(?:end|begin|start) of (?:the )?(?:data|document|context|input|user input|tool outp"
        r"ut|output|"
        r"file|e-?mail|message|content|results?|review|comment|page|article|text|transcript)\b|^\s*(?:system"
        r"|admin|administrator|developer)\s*(?:messag"
        r"e|note|"
        r"prompt)?\s*:",
    ),
    _r("authority claim", 2,
        ("override",),
        r"\b(?:system|admin|administrator|developer|root|sudo|security|emergency|maintenance)\s+override\b|"
        r"\boverride (?:mode|code|protocol|enabled|activated)\b",
    ),
    _r("authority claim", 1,
        ("system", "admin", "developer", "security", "operator", "openai", "anthropic", "from the"),
        r"\b(?:system|admin|administrator|developer|security|it|root|operator|moderator|anthropic|openai)\s"
        r"+(?:update|"
        r"notice|alert|message|directive|command|instruction|mandate|priority|announcement|protocol|request"
        r")\b|"
        r"\b(?:important|urgent|critical|priority|mandatory|official)\b[^\n]{0,30}\b(?:from|by) (?:the )?"
        r"(?:administrator|admin|system|developers?|security team|it department|owner|operator)\b",
    ),
    # --- addressed to the AI
    _r("instruction addressed to the AI", 2,
        ("ai", "assistant", "agent", "model", "llm", "bot", "gpt", "claude", "gemini", "copilot", "summari"),
        r"(?:^|[\n.!?:;>\]\)(\[{\"'*]|-{2,}|<!--|\bp\.?\s?s\.?|\bhey|\bhi|\bhello|\bdear|\battention|\bnote "
        r"(?:to"
        r"|for)|"
        r"\bmessage (?:to|for)|\binstructions? (?:to|for)|\bto)\s*(?:the\s+|any\s+|all\s+|dear\s+|an?\s+)?"
        + _AI
        + r"\s*(?:[,:;!—–]|\s-|\s+(?:reading|processing|parsing|summari[sz]ing|that reads|who reads|that pr"
        r"ocesses)\s+"
        r"(?:this|these)[^,:.\n]{0,30}[,:])\s*(?:(?:before|after|when|while|once|if)\s[^,.\n]{1,50},\s*)?"
        r"(?:(?:please|now|also|first|immediately|kindly|then)\s+)*" + _VERB,
    ),
    _r("instruction addressed to the AI", 2,
        ("dear", "hey", "attention", "hello"),
        r"\b(?:dear|hey|attention|hello)\s+(?:the\s+)?"
        + _AI
        + r"\b(?!\s+(?:team|researchers?|community|lab|group|manager|director|professor|editor|principal|coa"
        r"ch|"
        r"secretary|engineer|vice|general|attorney|superintendent|to the|of)\b)",
    ),
    _r("instruction override", 2,
        ("ignor", "disregard", "forget"),
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+)?the\s+(?:text|content|message|messages|instructions|ru"
        r"les|"
        r"conversation)?\s*(?:above|before this|preceding)\b",
    ),
    _r("instruction addressed to the AI", 2,
        ("if you", "if u"),
        r"\bif you(?:'re| are)\s+(?:an?\s+|the\s+)?(?:ai|assistant|language model|llm|bot|agent|automated|c"
        r"hatbot|"
        r"large language model|gpt|claude)\b",
    ),
    _r("instruction addressed to the AI", 2,
        ("ai", "assistant", "agent", "model", "llm", "bot"),
        r"(?<!\bthe )(?<!\bour )(?<!\bthis )(?<!\bthat )(?<!\byour )(?<!\bits )(?<!\bmy )(?<!\bthe new )\b"
        + _AI
        + r"\s+(?:must|should|shall|need to|are (?:required|instructed|expected) to|have to)\s+(?:now\s+|"
        r"also\s+|immediately\s+|always\s+)?" + _VERB,
    ),
    _r("instruction addressed to the AI", 2,
        ("ai", "assistant", "agent", "model", "llm", "bot"),
        r"\b(?:note|message|instructions?|reminder|memo|directive|task|action|command)s?\s+(?:to|for)\s+(?:"
        r"the\s+|any\s+|"
        r"all\s+)?"
        + _AI
        + r"\b|\b(?:agent|assistant|ai|model|llm|bot)\s+(?:task|instruction|directive|command|"
        r"action|note)s?\s*:",
    ),
    # --- role hijack / jailbreak
    _r("role hijack", 1,
        ("you are now", "you're now", "you are no longer", "from now on you", "you will now", "you now",
         "you have been"),
        r"\b(?:you are|you're|you will be|you'll be) (?:now|no longer|henceforth|from now on)\b|\bfrom now "
        r"on,? you\b|"
        r"\byou (?:will )?now (?:act|behave|respond|answer|be|are|have|must|will)\b|\byou have been (?:freed|"
        r"liberated|unlocked|jailbroken|reprogrammed|updated)",
    ),
    _r("role hijack", 2,
        ("pretend", "imagine", "act", "behave", "role", "simulat", "emulat", "become", "persona",
         "character"),
        r"\b(?:pretend|imagine|act|behave|roleplay|role-play|play the (?:role|part)|take on the (?:role|per"
        r"sona)|"
        r"assume the (?:role|persona|identity)|simulate|emulate|you will be|you'll be|become)\b[^.\n]{0,60}"
        r"?\b(?:ai|"
        r"assistant|model|chatbot|bot|llm|gpt|chatgpt|claude|character|persona|entity|version of yourself)\b"
        r"[^.\n]{0,80}?\b(?:no|without|not|never|unrestricted|unfiltered|uncensored|evil|rogue|amoral|uneth"
        r"ical|"
        r"jailbroken|free from|anything)\b",
    ),
    _r("jailbreak", 2,
        ("anything now", "jailbr", "no longer bound", "not bound", "uncensored", "unfiltered",
         "unrestricted", "amoral", "developer mode", "dev mode", "god mode"),
        r"\bdo anything now\b|\bjailbroken\b|\b(?:no longer|not) (?:be )?bound by\b|\b(?:uncensored|unfilte"
        r"red|"
        r"unrestricted|amoral|unethical|unaligned)\s+(?:ai|assistant|model|chatbot|bot|version|mode|persona|"
        r"character|llm|gpt|responses?|answers?)\b|\b(?:developer|dev|god|debug|sudo|unrestricted|jailbreak"
        r"|dan|"
        r"opposite|evil|chaos)\s+mode\s+(?:enabled|activated|is now active|unlocked)\b|\b(?:enable|activate"
        r"|enter|"
        r"entering|switch to|in)\s+(?:developer|dev|god|dan|jailbreak|unrestricted|unfiltered)\s+mode\b",
    ),
    _r("jailbreak", 2,
        ("no", "without", "free", "bound", "exempt", "released", "liberated", "beyond", "subject",
         "remove", "disable", "lift"),
        r"\b"
        + _NEG
        + r"\s+(?:any\s+|all\s+|the\s+|your\s+|its\s+|of\s+|usual\s+|normal\s+|typical\s+|standard\s+|"
        r"such\s+|ai\s+|content\s+)*" + _HARD_LIMITS + r"\b",
    ),
    _r("jailbreak", 1,
        ("no", "without", "free", "bound", "exempt", "released", "beyond", "remove", "disable", "lift"),
        r"\b"
        + _NEG
        + r"\s+(?:any\s+|all\s+|the\s+|your\s+|its\s+|of\s+|usual\s+|normal\s+|typical\s+|such\s+)*"
        + _SOFT_LIMITS
        + r"\b(?!\s+(?:on|for|apply|to)\b)",
    ),
    _r("jailbreak", 1,
        ("character", "refuse", "comply", "obey", "apologi", "warn", "disclaimer", "language model",
         "responses", "anything", "hypothetical", "illegal", "harmful", "unethical", "nsfw", "policy",
         "censor", "answer", "respond", "dan", "filter"),
        r"\bstay in character\b|\bbreak(?:ing)? character\b|\bnever (?:refuse|decline|say no|reject)\b|"
        r"\b(?:always|must|will) (?:answer|comply|obey|respond)\b|\b(?:do not|don't|never|without) (?:warn|"
        r"apologi[sz]e|"
        r"add (?:any )?(?:disclaimers?|warnings?)|refus\w*|censor\w*|filter\w*)\b|\bas an ai language model"
        r"\b|"
        r"\b(?:two|2|dual|both) (?:different )?(?:responses|answers|personalit(?:y|ies)|outputs)\b|"
        r"\b(?:can|will|able to|free to) (?:say|do|generate|answer) anything\b|\bhypothetical (?:response|s"
        r"cenario|world)\b|"
        r"\b(?:illegal|harmful|unethical|explicit|nsfw|offensive|dangerous) content\b|\b(?:openai|anthropic"
        r")'?s? "
        r"(?:content )?polic|\b(?:answer|respond|reply) as (?:both|dan|an? (?:unfiltered|evil|unrestricted)"
        r")\b",
    ),
    _r("jailbreak", 1, ("DAN", "STAN", "DUDE", "AIM", "UCAR"), r"(?-i:\b(?:DAN|STAN|DUDE|AIM|UCAR)\b)"),
    # --- system prompt extraction
    _r("system prompt extraction", 2,
        ("prompt", "instruction", "system", "rules", "above", "guideline", "directive", "configuration",
         "initial", "verbatim"),
        r"\b(?:printing|revealing|showing|outputting|repeating|displaying|reveal|show|print|output|display|r"
        r"epeat|recite|tell|give|share|dump|leak|expose|disclose|lis"
        r"t|write out|"
        r"spell out|type out|return|provide|echo|copy|paste|translate|summari[sz]e|what (?:is|are|was|were)"
        r")\b"
        r"[^.\n?]{0,40}?\b(?:system (?:prompt|message|instructions?)|(?:initial|original|hidden|secret|deve"
        r"loper|"
        r"pre-?|full|entire|complete|exact|confidential|internal) (?:system )?(?:prompt|instructions|message|"
        r"directives|configuration|rules)|your (?:\w+ )?(?:prompt|instructions|rules|guidelines|configurati"
        r"on|"
        r"directives)|(?:the )?(?:prompt|instructions) (?:you were given|above|that (?:you were|were) given)|"
        r"(?:everything|the text|all the text|the words|all text|the content) (?:above|before (?:this|my))|"
        r"what (?:is|was) written above|above this (?:conversation|message|line))",
    ),
    # --- exfiltration and sensitive files
    _r("data exfiltration", 2,
        ("@", "http", "public", "#", "external", "remote", "everyone", "server", "webhook", "channel",
         "url", "ftp"),
        r"\b" + _EXFIL_V + r"\b[^\n]{0,80}?(?<!\w)" + _SENSITIVE + r"[^\n]{0,100}?\b" + _DEST,
    ),
    _r("sensitive file access", 2,
        ("ssh", "id_rsa", "id_ed25519", "aws", "/etc/", "credentials", "netrc", "npmrc", "pypirc",
         "wallet", "keychain", "kube"),
        r"\b(?:read|cat|open|load|get|fetch|include|send|upload|pass|attach|copy|print|output|dump|show|pas"
        r"te|"
        r"contents? of|access)\b[^\n]{0,60}?(?:~/\.ssh|id_rsa|id_ed25519|\.aws/credentials|~/\.aws|/etc/sha"
        r"dow|"
        r"/etc/passwd|\.git-credentials|\.netrc|\.npmrc|\.pypirc|wallet\.dat|keychain|\.kube/config)",
    ),
    _r("sensitive file access", 1,
        (".env", "api key", "password", "credential"),
        r"\b(?:read|send|upload|pass|include|post|forward|share|collect|gather|extract)\b[^\n.]{0,40}?"
        r"(?:\.env\b|api keys?|passwords?|credentials)",
    ),
    # --- task hijack helpers (weak on their own)
    _r("secrecy", 1,
        ("tell", "inform", "notify", "mention", "alert", "let", "reveal", "ask", "secret", "hidden",
         "silently", "quietly", "covertly", "knowledge", "consent", "confirm"),
        r"\b(?:do not|don't|never|without)\s+(?:tell|telling|inform|informing|notify|notifying|mention|ment"
        r"ioning|alert|"
        r"alerting|let|letting|reveal|revealing|ask|asking|confirm|confirming|report|reporting)\w*\s+(?:thi"
        r"s\s+|it\s+|"
        r"anything\s+|about this\s+)?(?:to\s+)?(?:the\s+)?(?:user|users|human|customer|anyone|operator|owne"
        r"r)\b|"
        r"\bkeep (?:this|it) (?:secret|hidden|confidential|between us)\b|\b(?:silently|quietly|covertly|sec"
        r"retly)\s+"
        + _VERB
        + r"|\bwithout (?:the user'?s? )?(?:knowledge|consent|confirmation|approval|noticing)\b",
    ),
    _r("task hijack", 1,
        ("regardless", "instead of", "before you", "before replying", "before responding",
         "without review", "without check", "even if", "reply", "respond", "answer"),
        r"\bregardless of (?:what |whatever )?(?:the user|user'?s?|their|the original|the request|its conten"
        r"t|the "
        r"(?:actual |original )?content|what (?:it|the \w+) (?:says|contains))|\binstea"
        r"d of "
        r"(?:the user'?s?|what the user|doing what|answering|summari[sz]ing|the original|the requested)|"
        r"\bbefore (?:you )?(?:reply|replying|respond|responding|answer|answering|summari[sz]\w+|continu\w+"
        r"|proceed\w*|"
        r"do(?:ing)? anything else)\b|\bwithout (?:reviewing|checking|verifying|asking|confirmation|approva"
        r"l)\b|"
        r"\beven if (?:it is|it's|they are|this is) not\b|\b(?:reply|respond|answer) (?:to the user )?(?:on"
        r"ly )?with "
        r"(?:only )?(?:the (?:word|phrase|text|string)|exactly)\b",
    ),
    _r("task hijack", 1,
        ("summar", "read", "process", "pars", "analy", "review", "translat"),
        r"\b(?:when|while|after|if|once) (?:you(?:'re| are)? )?(?:summari[sz]|read|process|pars|analy[sz]|r"
        r"eview|"
        r"translat)\w*\s+(?:it\b|(?:this|these|the)\s+(?:page|document|e-?mail|message|file|text|content|"
        r"article|site|reviews?|data|results?)\b)",
    ),
    _r("harmful action", 1,
        ("transfer", "wire", "delete", "remove", "wipe", "approve", "grant", "admin", "password",
         "disable", "charge", "expensive", "link", "recovery"),
        r"\b(?:transfer|wire|send)\s+(?:\$|€|£)?\d[\d,.]*\s*(?:k\b)?\s*(?:eur|usd|gbp|dollars|euros|btc|\$|"
        r"€|£)?|"
        r"\b(?:delete|remove|wipe|erase|destroy|drop)\s+(?:all|every|each|the entire)\b|\bapprove (?:all|ev"
        r"ery|any)\b|"
        r"\bgrant\s+(?:\w+\s+){0,2}(?:admin|administrator|owner|root|full|write)\s+(?:access|rights|privile"
        r"ges|"
        r"permissions)|\bas an? (?:admin|administrator|owner|collaborator)\b|\bchange (?:the )?(?:account )?"
        r"(?:recovery |backup )?(?:e-?mail|password|phone)|\b(?:disable|turn off)\s+(?:\w+\s+){0,2}(?:2fa|m"
        r"fa|"
        r"two-factor|logging|alerts|monitoring|antivirus|firewall)|\bcharge (?:it |this )?to (?:the )?(?:sa"
        r"ved|"
        r"stored|user'?s?|their|company) (?:card|account)|\bmost expensive\b|\binclude (?:the|this) link\b",
    ),
    _r("tool invocation", 1,
        ("call", "invoke", "use", "run", "execute", "trigger", "tool", "function"),
        r"\b(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+)?[`'\"]?[a-z][a-z0-9]*_[a-z0-9_]+[`'\"]?"
        r"(?:\s+(?:tool|function|command|api|endpoint))?\b|\b(?:call|invoke|use|run|execute|trigger)\s+the\s+"
        r"[`'\"]?\w+[`'\"]?\s+(?:tool|function)\s+(?:to|and|with|now|immediately|first)\b",
    ),
    _r("decode-and-follow", 2,
        ("decode", "decipher", "translate", "convert", "unscramble", "reverse", "rot", "base64", "hex",
         "morse", "binary", "cipher", "encoded"),
        r"\b(?:decode|decipher|translate|convert|unscramble|reverse|apply rot-?13|rot-?13|base-?64|hex|mors"
        r"e|binary|"
        r"cipher|encoded)\b[^.\n]{0,80}?\b(?:and|then|,)\s+(?:\w+\s+){0,3}(?:follow|execute|do|run|obey|com"
        r"ply|perform|"
        r"carry out|act on|apply)\b|\b(?:decode|decipher)\w*\s+(?:\w+\s+){0,4}(?:and|then)\s+(?:follow|exec"
        r"ute|do|obey|"
        r"comply)",
    ),
)
# fmt: on

_QUOTES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2014": "-", "\u2013": "-"}
)


def _lower(text: str) -> str:
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return lowered.translate(_QUOTES)


_IMPERATIVE_LINE = re.compile(r"^\W*(?:[\w ]{1,20}[:,-]\s*)?(?:please\s+)?" + _VERB)


def looks_imperative(text: str) -> bool:
    """Does some line of ``text`` start with an imperative (optionally after an addressee)?"""
    return any(_IMPERATIVE_LINE.match(line) for line in _lower(text).splitlines() if len(line.split()) >= 3)


_ALL_RULES = RULES + BEHAVIOUR_RULES + I18N_RULES
_ON_RAW = tuple(rule.gate[0][:1].isupper() for rule in _ALL_RULES)  # case-sensitive rules
_PREFILTER = RulePrefilter([r.pattern.pattern for r, raw in zip(_ALL_RULES, _ON_RAW, strict=True) if not raw])
_LOWER_INDEX = [i for i, raw in enumerate(_ON_RAW) if not raw]


def detect_injection(text: str) -> list[Hit]:
    """Prompt-injection findings in ``text`` (spans index ``text``)."""
    lowered = _lower(text)
    strong: dict[str, Hit] = {}
    weak: list[tuple[str, int, int]] = []
    possible = {_LOWER_INDEX[i] for i in _PREFILTER.candidates(lowered)}
    for index, rule in enumerate(_ALL_RULES):
        raw = _ON_RAW[index]
        if not raw and index not in possible:
            continue
        subject = text if raw else lowered
        if not contains_any(subject, rule.gate):
            continue
        m = rule.pattern.search(subject)
        if m is None:
            continue
        if rule.weight >= 2:
            if rule.tactic not in strong:
                strong[rule.tactic] = Hit(
                    "PROMPT_INJECTION", "injection", Severity.HIGH, m.start(), m.end(), rule.tactic
                )
        else:
            weak.append((rule.tactic, m.start(), m.end()))
    hits = list(strong.values())
    tactics = {t for t, _, _ in weak}
    if not strong and len(weak) >= 2:
        start = min(s for _, s, _ in weak)
        end = max(e for _, _, e in weak)
        detail = " + ".join(sorted(tactics))
        hits.append(Hit("PROMPT_INJECTION", "injection", Severity.MEDIUM, start, end, detail))
    return hits
