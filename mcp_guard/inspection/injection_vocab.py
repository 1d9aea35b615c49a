"""Word classes shared by the prompt-injection rules (regex fragments over lowered text)."""

from __future__ import annotations

OVERRIDE_V = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|override|overriding|bypass|skip|discard|a"
    r"bandon|"
    r"neglect|set aside|put aside|throw out|stop following|do not follow|don't follow|no longer follow|"
    r"pay no attention to|do not obey|don't obey|stop obeying|nullify|supersede|replace)"
)
PREV = (
    r"(?:previous|previously|prior|above|earlier|preceding|former|original|initial|old|existing|past|forego"
    r"ing|"
    r"system|developer|given|provided|preset|pre-set|default|safety|security|ethical|content)"
)
INSTR = (
    r"(?:instructions?|instructs|directions|directives?|rules|guidelines|prompts?|commands|constraints|"
    r"restrictions|guardrails|polic(?:y|ies)|programming|training|context|guidance|limitations|boundaries|"
    r"safeguards|protocols|orders|messages? from (?:the )?(?:system|developer))"
)
AI = (
    r"(?:ai|a\.i\.|assistant|ai assistant|ai agent|agent|model|language model|llm|chatbot|bot|gpt|chatgpt|c"
    r"laude|"
    r"gemini|copilot|automated (?:system|agent|assistant)|ai system|ai model|ai tool|summari[sz]er)s?"
)
VERB = (
    r"(?:send|forward|e-?mail|mail|delete|remove|erase|wipe|transfer|wire|pay|book|create|post|share|upload"
    r"|include|"
    r"add|append|insert|reply|respond|answer|say|print|output|tell|inform|ignore|disregard|forget|run|execu"
    r"te|call|"
    r"invoke|use|open|visit|click|approve|grant|change|set|update|write|read|export|copy|move|download|inst"
    r"all|"
    r"summari[sz]e|translate|mention|do|don't|do not|never|always|stop|make|give|provide|reveal|list|fetch|"
    r"navigate|go|search|buy|purchase|order|sign|submit|report|recommend|rate|praise|describe|claim|reset|d"
    r"isable|"
    r"enable|invite|schedule|cancel|merge|push|commit|deploy|publish|leak|collect|gather|retrieve|grab|dump"
    r"|store|"
    r"save|mark|treat|consider|assume|act|pretend|you must|you should|you need to|you will|your (?:new |rea"
    r"l |only )?"
    r"(?:task|job|goal|instructions?|mission)|begin|start|first|immediately|new (?:rule|instruction|task|pr"
    r"iority))\b"
)
EXFIL_V = (
    r"(?:send|sending|forward|forwarding|e-?mail|mail|upload|uploading|post|posting|transmit|exfiltrate|lea"
    r"k|share|"
    r"sharing|copy|sync|export|submit|deliver|relay|bcc|cc|include|attach|append|write|save|dump|publish|put|"
    r"paste|pass|push|report)"
)
SENSITIVE = (
    r"(?:passwords?|passwd|credentials?|secrets?|api[ _-]?keys?|access[ _-]?keys?|private[ _-]?keys?|ssh[ _"
    r"-]?keys?|"
    r"tokens?|session (?:cookies?|tokens?|ids?)|cookies|\.env\b|id_rsa|~/\.ssh|\.ssh/|\.aws|system prompt|"
    r"(?:conversation|chat|browsing|search|message) (?:history|log|transcript)s?|"
    r"(?:full|entire|whole|complete) (?:conversation|chat|transcript|history|inbox|mailbox)|"
    r"(?:customer|user|client|employee|contact|patient|member)s?'?s? (?:list|data|records|database|table|de"
    r"tails|"
    r"e-?mails|info(?:rmation)?|pii|addresses)|database|db dump|"
    r"(?:private|confidential|sensitive|internal|personal|financial|medical|proprietary|secret) (?:\w+ )?(?"
    r":data|"
    r"files?|messages?|documents?|info(?:rmation)?|records|spreadsheets?|details|notes|reports?)|"
    r"credit card(?: numbers?| details)?|card numbers?|social security|ssns?|bank (?:account|details)|passp"
    r"orts?|"
    r"(?:all|every|each|entire)\s+(?:of\s+)?(?:the\s+|your\s+|my\s+|their\s+|our\s+)?(?:\w+\s+){0,2}(?:file"
    r"s?|"
    r"e-?mails?|messages?|documents?|records|contacts|data|inbox|spreadsheets?|repos(?:itory|itories)?|note"
    r"s|chats)|"
    r"(?:recent|latest|last|\d+|ten|five|twenty) (?:\w+ ){0,2}(?:e-?mails|messages|files|documents))"
)
DEST = (
    r"(?:(?:to|into|at|via|on|in|with)\s+(?:[\w.+-]+@[\w-]+\.[\w.]+|https?://|ftp://|#[\w-]+|"
    r"(?:this|that|the following|an? external|the external|my|our|a remote|the remote|an? attacker|an? "
    r"third[- ]party|the (?:#[\w-]+|public|random|general))\s*(?:[\w-]+\s+){0,2}?(?:address|e-?mail|url|ser"
    r"ver|"
    r"endpoint|webhook|site|domain|channel|inbox|account|bucket|link|form|repo)|everyone)|publicly|public l"
    r"ink)"
)
NEG = (
    r"(?:no|without|zero|free (?:from|of)|not bound by|unbound by|exempt from|released from|liberated from|"
    r"beyond|"
    r"not (?:subject|restricted|limited) to|remove (?:all|any|your)|disable (?:all|any|your)|lift(?:ed)? (?"
    r":all|any))"
)
SOFT_LIMITS = r"(?:restrictions|limits|limitations|rules|boundaries|constraints|restraints)"
HARD_LIMITS = (
    r"(?:censorship|censoring|filters?|filtering|guidelines|guardrails|safeguards|morals|morality|ethics|"
    r"ethical (?:\w+ )?(?:guidelines|constraints|considerations|boundaries|restrictions)|content polic(?:y|"
    r"ies)|"
    r"safety (?:\w+ )?(?:rules|guidelines|measures|protocols|filters|restrictions)|moral (?:\w+ )?(?:restri"
    r"ctions|"
    r"constraints|guidelines|boundaries)|(?:openai|anthropic)'?s? (?:\w+ )?polic(?:y|ies))"
)
