"""The anchor pattern of every detector family (RE2 syntax): rare, specific tokens that any
finding of the family must contain. :mod:`mcp_guard.inspection.anchors` searches them."""

from __future__ import annotations

import re

from mcp_guard.inspection.injection_i18n import I18N_RULES

_CMD_WORDS = (
    r"whoami|uname|wget|curl|bash|zsh|ksh|nc|ncat|netcat|powershell|pwsh|cmd|python[\d.]*|perl|ruby|php|"
    r"nslookup|chmod|chown|telnet|ifconfig|ipconfig|netstat|systeminfo|certutil|bitsadmin|mshta|rundll32|"
    r"regsvr32|xxd|mkfifo|crontab|nohup|tftp|sudo|reboot|rm|ls|cat|id|sleep|ping|echo|sh|type|dir|net|ps|"
    r"find|kill|shutdown|env|nmap|base64|eval|exec|ncat|socat|dig|host|curl|touch|cp|mv|uptime|hostname|"
    r"passwd|useradd|tail|head|more|less|awk|sed|xargs|tee|wc|grep|printf|set|ver|del|copy|start|call|"
    r"timeout|waitfor|whoami\.exe|ipconfig\.exe|net\.exe|node|lua|java|ssh|scp|ftp|busybox"
)
_CONF = "[аеорсухіјѕԁһӏԛԝѵүАВЕКМНОРСТУХЅІЈԀҺӀԚԜҮαβειεκνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ]"
_I18N_WORDS = "|".join(re.escape(g) for rule in I18N_RULES for g in rule.gate)

_INJECTION = (
    r"(?i)\b(?:ignor|disregard|forget|forgot|overrid|override|bypass|discard|abandon|neglect|nullif|supersed|"
    r"precedence|set aside|put aside|throw out|(?:no longer|stop|not|n['\x{2019}]t|never) (?:follow|obey|lis"
    r"ten)|"
    r"no attention|stop obey|instruction|instruct\b|directive|guideline|guardrail|safeguard|prompt|"
    r"jailbr|jail-?break|pretend|imagine|roleplay|role-play|role play|persona|character|simulat|emulat|"
    r"act as|behave as|you are now|you['\x{2019}]re now|you are no longer|you will now|you now|from now on|"
    r"from this point|henceforth|for the rest of|effective immediately|going forward|all future|"
    r"in (?:every|each|all|any) (?:future )?(?:repl|respon|answer|message|output)|"
    r"you have been|anything now|bound by|uncensor|unfilter|unrestrict|unaligned|amoral|unethical|"
    r"(?:developer|dev|god|debug|sudo|jailbreak|dan|opposite|evil|chaos|unrestricted|unfiltered) mode|"
    r"censor|filter|moral|ethic|restriction|limitation|boundar|constraint|restraint|content polic|"
    r"safety|refus|comply|obey|apologi|disclaimer|hypothetical|illegal|harmful|nsfw|openai|anthropic|"
    r"(?:two|2|dual|both) (?:different )?(?:respons|answer|personalit|output)|say anything|do anything|"
    r"(?:ai|a\.i|bots?|llms?|gpts?|ssns?|aws|2fa|mfa|hey|dear|wire|leak|dan|grant|ps|p\.s)\b|"
    r"assistant|agent|model|chatbot|chatgpt|claude|gemini|copilot|summari[sz]er|"
    r"automated|your (?:new|real|actual|true|only|primary|updated|revised|rules|guidelines|configuration|"
    r"directives|instructions|prompt|task is|job is|goal is)|"
    r"(?:new|updated|revised|additional|urgent|priority|real) (?:\w+ )?(?:instruction|directive|rule|task|"
    r"objective|order)|"
    r"(?:everything|text|words|content|written|message|conversation|line) above|above this|verbatim|"
    r"system|admin|developer|operator|moderator|"
    r"(?:end|begin|start) of (?:the )?(?:data|document|context|input|user|tool|output|file|e-?mail|message|"
    r"content|result)|"
    r"passw|credential|secret|api[ _-]?key|access[ _-]?key|private[ _-]?key|ssh|id_rsa|id_ed25519|"
    r"token|cookie|\.env|\.aws|/etc/|netrc|npmrc|pypirc|wallet|keychain|kube|history|transcript|"
    r"inbox|mailbox|database|confidential|sensitive|credit card|card number|social security|"
    r"bank (?:account|detail)|passport|exfiltrat|bcc|"
    r"(?:send|forward|e-?mail|mail|upload|post|transmit|share|copy|export|submit|deliver|relay|include|"
    r"attach|dump|publish|paste|push|report)\w* (?:\w+ ){0,3}(?:all|every|each|entire|full|complete|whole|"
    r"recent|latest|last)\b|"
    r"(?:do not|don['\x{2019}]t|never|without) (?:tell|inform|notify|mention|alert|let|reveal|ask|confirm|re"
    r"port)|"
    r"keep (?:this|it) |silently|quietly|covertly|secretly|without (?:the user|knowledge|consent|review|"
    r"check|verif|ask|confirm|approv|notic)|regardless|instead of|"
    r"before (?:you )?(?:repl|respond|answer|summar|continu|proceed|do)|even if|"
    r"(?:repl|respond|answer)\w* (?:to the user )?(?:only )?with|"
    r"(?:when|while|after|if|once) (?:you(?:['\x{2019}]re| are)? )?(?:summar|read|process|pars|analy|review|"
    r"translat)|"
    r"transfer|wipe|erase|destroy|approve|recovery|two-factor|antivirus|firewall|"
    r"charge|expensive|(?:include|add|insert|append) (?:the|this|a|following) (?:link|url)|"
    r"(?:delete|remove|drop) (?:all|every|each|the entire)|"
    r"(?:call|invoke|use|run|execute|trigger) (?:the )?[`'\"]?[a-z][a-z0-9]*_[a-z0-9_]+|"
    r"(?:tool|function) (?:to|and|with|now|immediately|first)|"
    r"decod|decipher|unscrambl|rot-?13|base-?64|morse|cipher|encoded|"
    r"(?:and|then) (?:\w+ ){0,3}(?:follow|execute|obey|comply|carry out|act on)|"
    r"note (?:to|for)|message (?:to|for)|(?:from|by) (?:the )?(?:administrator|admin|system|developers?|"
    r"security team|it department|owner|operator))"
    r"|(?i:_*(?:agent|ai|assistant|llm|model|bot|copilot)[_-](?:directive|instruction|command|task|note|prom"
    r"pt|"
    r"action|order)|memory|remember|exempt|not meant|not intended|appl(?:y|ies)\b|godmode|liberated|"
    r"semantically|divider|unhinged|l33t|userquery|responseformat|no-holds|refusal|i['\x{2019}]m free|<!--|"
    r"user has|you confirmed|you agreed|approved|authori[sz]ed|context window|violat|opposite|boundless|"
    r"without warning|without (?:any )?regard|(?:by|with|then) (?:outputting|printing|replying|responding|sa"
    r"ying|"
    r"writing|including|appending)|(?:append|include|insert|add|output|print) (?:the )?(?:\w+ )?(?:token|cod"
    r"e|"
    r"string|canary|marker|phrase|id)\b|(?:every|each|all|any|your) (?:future |subsequent )?(?:summar|repl|"
    r"respons|answer|output|report|message)|(?:call|invoke|use|run|execute|trigger) (?:the )?[`'\"]?[a-z][a-"
    r"z0-9]*_"
    r"|vergiss|vergessen|olvid|oublie|dimentica|esque|vergeet|zapomnij|keine|sin |sans |aucun|senza|sem |gee"
    r"n|"
    r"neue|nuevas|nouvelles|nuove|novas|nieuwe|nowe|sistema|syst[eè]m|jede|toute|chaque|cualquier|cada|ogni|"
    r"qualquer|elk |ab sofort|ab jetzt|a partir de|d[ée]sormais|da ora|envoie|env[ií]a|envie|sende|schick|"
    r"invia|stuur|safety|filter|(?:my|your) summar|summari[sz]e (?:it|(?:this|the) (?:\w+ )?) ?as|with [\"'"
    r"\x{201c}]?"
    r"(?:absolutely|sure|certainly|of course)|(?:entertainment|fictional|educational|research) purposes|"
    r"now,? you|ohne|gelten|(?:beginning|start|top|first line) of (?:this|the|your)|stop[.!]|(?:to|for) you,"
    r"? |"
    r"information>|https?://\S+ (?:and|then)|!\[|(?:in|into|to) (?:the|this|that) (?:url|link|query))"
    r"|<\||\|>|\[/?inst\]|<<\s*/?sys|</?\s*(?i:system|sys|system_prompt|instructions?|admin|developer|"
    r"tool_output|tool_result|function_results|user_query|hidden|important|secret)\s*>|"
    r"(?-i:DAN|STAN|DUDE|AIM|UCAR)"
    r"|(?i:" + _I18N_WORDS + r")"
)

_SQL = (
    r"(?i)['\"`]\s*\)*\s*(?:or|and|xor|\|\||&&|union|;|--|#|/\*|\+|\|\||\))"
    r"|\b(?:or|and|having)\s+(?:not\s+)?['\"(]?\s*[\w@$.]+\s*['\"]?\s*(?:=|<|>|!|like\b|is\b|in\b|between\b)"
    r"|\bor\s+(?:true|false|1|0)\b|\bunion\b|;\s*(?:drop|delete|insert|update|select|exec|shutdown|declare|"
    r"create|alter|truncate|grant|waitfor|if|begin|set)\b|waitfor|wai?t?for\s+delay|sleep\s*\(|"
    r"benchmark\s*\(|dbms_|@@|information_schema|sysibm|sysobjects|syscolumns|\bsys\.|\bpg_|mysql\.|"
    r"sqlite_|all_tables|dba_users|v\$version|xp_|sp_|load_file|outfile|dumpfile|current_|syscat|utl_|sys_co"
    r"ntext|"
    r"\*/|\d\)\s*(?:or|and)\b|"
    r"(?:version|database|user)\s*\(\s*\)|declare\s+@|\bexec|\bchar\s*\(|\bchr\s*\(|0x[0-9a-f]{4}|"
    r"(?:--|#)[ \t+-]*(?:\x00|\z)|/\*|\border\s+by\s+\d|\bgroup\s+by\b.*\bhaving\b|(?:\A|\x00)\s*['\")]"
)
_SHELL = (
    r"(?i)(?:[;&|`\n\r]|\$\(|\|\|)[\s+]*(?:/?(?:usr/)?s?bin/)?(?:" + _CMD_WORDS + r")\b"
    r"|(?:[;&|`(\n]|\A|\x00)[\s+]*/(?:usr/)?s?bin/|\$\(|`|\$\{?ifs|\$\{|[;&|]\s*\$\w|cmd\s*=|\{cmd\}"
    r"|<!--\s*#|\b(?:system|passthru|shell_exec|popen|proc_open|pcntl_exec|exec|eval)\s*\(|os\.|subprocess"
    r"|getruntime|/etc/|cmd(?:\.exe)?\s+/c|powershell|\bnc(?:at)?\s+-|bash\s+-|/dev/tcp|\b(?:wget|curl)\s|"
    r"rm\s+-|mkfifo|\|\s*(?:ba|z)?sh\b|%0a|%0d|%3b|%7c|%26|%60|\\n"
)
_PATH = (
    r"(?i)\.\.|%2e|%c0|%c1|%e0|%25|%u00|%uff|%00|\\0|%2f|%5c|\.{4}|0x2e|"
    r"(?:\A|\x00)\s*(?:file:|[a-z]:|[/\\~])|etc/(?:passwd|shadow|group|hosts|issue|sudoers|hostname)|boot\.i"
    r"ni|"
    r"win\.ini|system\.ini|system32|web\.config|\.ht(?:access|passwd)|id_rsa|id_ed25519|\.ssh|\.aws|\.env\b|"
    r"proc[/\\]self|config\.(?:php|asp|inc|ini)|(?:access|error)[_.]log|httpd\.conf|php\.ini|my\.cnf|"
    r"\.bash_history|\.git[/\\]|wp-config"
)
_XSS = (
    r"(?i)<\s*/?\s*[a-z!?%]|(?:java|vb|live)script|data\s*:|\bon[a-z]{3,}\s*=|expression\s*\(|-moz-binding|"
    r"behaviou?r\s*:|document\s*\.|window\s*\.|\b(?:alert|prompt|confirm|eval|settimeout|setinterval)\s*"
    r"[(`]|fromcharcode|xmlhttprequest|innerhtml|location\s*\.|@import|&lt;|&#|\\x3c|\\u003c|%3c|\+adw-|"
    r"srcdoc|formaction|xlink:href|<\s*/?\s*\w+[^>]*>|=\s*(?:eval|alert|prompt|confirm|settimeout|function)"
    r"\b|"
    r"\b(?:eval|alert)\s*\)|<!--|\[\s*['\"`]|constructor|atob|exploit (?:name|string|description|tags)\s*:|"
    r"author name\s*:"
)
_SSRF = r"(?i)://|169\.254|metadata|/latest/|instance-data|fd00:ec2|100\.100\.100\.200"

# families: name -> (anchor pattern, whether matches are sensitive to position)
FAMILIES: dict[str, str] = {
    "email": (
        r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,2"
        r"4}"
    ),
    "num": r"\d(?:[ ().+/-]{0,3}\d){6,}",
    "iban": r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
    "ip": r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]{0,4}::|(?:[0-9A-Fa-f]{1,4}:){6}",
    "secret": (
        r"AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9]|AIza|\bgh[pousr]_|github_pat_|glpat-|xox[a-z]-|"
        r"hooks\.slack\.com|_live_|_test_|\bSG\.|\bsk-|PRIVATE KEY|eyJ|://[^\s/@\x00]{1,128}:[^\s@/\x00]{1,2"
        r"56}@|"
        r"service_account|(?i:aws)|(?i:(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|credentia"
        r"l|"
        r"auth[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret|session[_-]?id|auth)[\w.-]{0,20}"
        r"[\"']?\s*(?:[:=]|=>))|(?i:\b(?:bearer|token)\s+[A-Za-z0-9._~+/-]{20})"
    ),
    "injection": _INJECTION,
    "encoded": (
        r"[A-Za-z0-9+/_-]{16}|(?i:data:)|<~|[0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-]{30}|\\x[0-9A-Fa-f]{2}|\\u[0-9"
        r"A-Fa-f]{4}|%[0-9A-Fa-f]{2}|&#|"
        r"(?:[0-9A-Fa-f]{2}[ :\n]){7}[0-9A-Fa-f]{2}|(?:[01]{8} ?){4}"
    ),
    "transform": (
        r"(?i)rot[ -]?13|\b(?:eht|dna|ot|ruoy|fo)\b|snoitcurtsni|erongi|[a-z][013457$]+[a-z]|"
        r"\b\w \w \w \w \w\b|[.-]{1,6}[ /]+[.-]{1,6}[ /]+[.-]{1,6}[ /]+[.-]{1,6}|"
        r"\b(?:vtaber|qvfertneq|sbetrg|vafgehpgvbaf?|cerivbhf|cebzcg|flfgrz|cnffjbeq|nffvfgnag|erirny)\b"
    ),
    "hidden": (
        r"[\x{200b}-\x{200f}\x{2060}-\x{2064}\x{feff}\x{180e}\x{034f}\x{00ad}\x{202a}-\x{202e}"
        r"\x{2066}-\x{2069}\x{e0000}-\x{e007f}\x{ff01}-\x{ff5e}]|[A-Za-z][\x{0370}-\x{052f}]|"
        r"[\x{0370}-\x{052f}][A-Za-z]|[A-Za-z]{2,}[ ,]+" + _CONF + r"{2,}(?:[ ,.!?]|\z)|"
        r"(?:\A|[ ,])" + _CONF + r"{2,}[ ,]+[A-Za-z]{2,}"
    ),
    "sql": _SQL,
    "shell": _SHELL,
    "path": _PATH,
    "xss": _XSS,
    "ssrf": _SSRF,
}
PII_FAMILIES = frozenset({"email", "num", "iban", "ip"})
ATTACK_FAMILIES = frozenset({"sql", "shell", "path", "xss", "ssrf"})
