"""Argument attacks: SQL injection, shell injection, path traversal and XSS shapes.

Rules target *injection shapes* (a closed literal followed by logic, stacked queries,
command separators followed by commands, traversal sequences, script contexts), not the
mere presence of SQL or shell syntax, so a query tool receiving a plain SELECT or a
command tool receiving ``cat README.md | wc -l`` is not flagged. Each rule runs on a view
of the value with URL encoding (twice), HTML entities, overlong UTF-8 and ``+``-spaces
undone; a match found only in the decoded view spans the whole value.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from urllib.parse import unquote

from mcp_guard.findings import Severity
from mcp_guard.inspection.anchors import find_anchors
from mcp_guard.inspection.hits import Hit, contains_any

_ATTACK_FAMILIES = frozenset({"sql", "shell", "path", "xss"})

_OVERLONG = re.compile(
    r"%(?:c0%ae|e0%80%ae|c0%2e|u002e|uff0e|c0%af|e0%80%af|c0%2f|c1%9c|c1%1c|c1%af|u2215|u2216|u002f|u005c)"
)
_OVERLONG_MAP = {"ae": ".", "2e": ".", "u002e": ".", "uff0e": "."}

_SQL = (
    (
        "tautology",
        re.compile(
            r"['\"`]\s*\)*\s*(?:or|\|\||xor)\s+(?:not\s+)?[('\"]?\s*[\w@$.]+\s*['\"]?\s*"
            r"(?:=|<>|!=|<=|>=|<|>|\blike\b|\bis\s+(?:not\s+)?null\b|\bin\s*\(|\bbetween\b|\brlike\b|\brege"
            r"xp\b)"
            r"|['\"`]\s*\)*\s*(?:and|&&)\s+(?:not\s+)?\(?\s*(?:\d+|'[^']*'|\"[^\"]*\")\s*(?:=|<>|!=|<|>|\blike\b)"
            r"|['\"`]\s*\)*\s*(?:and|&&|or|\|\|)\s+(?:not\s+)?\(?\s*(?:sleep|benchmark|pg_sleep|extractvalue|updatexml|"
            r"exists|ascii|substring|substr|length|char|if|case|select|user|database|version)\b"
            r"|\b(?:or|and)\s+(['\"]?)(\w+)\1\s*=\s*\1\2\1(?!\w)"
            r"|\bor\s+(?:true|1)\b\s*(?:--|#|/\*|;|$)"
        ),
    ),
    (
        "leading boolean clause",
        re.compile(r"^\s*['\")]*\s*(?:or|and|having|order\s+by|group\s+by)\b.*(?:=|--|/\*|#|\(|\blike\b)"),
    ),
    (
        "stacked query",
        re.compile(
            r"(?:['\")]|^\s*\d+)\s*;\s*(?:drop|delete|insert|update|select|exec|execute|shutdown|declare|create|alter|t"
            r"runcate|"
            r"grant|waitfor|if|begin|set|union)\b"
            r"|;\s*(?:drop\s+(?:table|database)|shutdown\b|exec\s+(?:master|xp_|sp_)|declare\s+@|waitfor\b)"
        ),
    ),
    (
        "UNION SELECT",
        re.compile(
            r"['\")]\s*(?:\)\s*)*union(?:\s+|/\*.*?\*/)+(?:all\s+|distinct\s+)?select\b|['\"]\s*\(\s*select\b"
            r"|\bunion(?:\s+|/\*.*?\*/)+(?:all\s+)?select(?:\s+|/\*.*?\*/)+(?:null|\d|@@|char\(|concat|0x|u"
            r"ser\(|version)"
        ),
    ),
    (
        "comment truncation",
        re.compile(
            r"['\"]\)*(?:--|#|/\*)|['\"]\s*\)*\s*(?:--|#)[\s+-]*$|['\"][^\n]*?(?:--[\s+-]*|#\s*|/\*[^\n]*)$|\*/\s*=|=\s*\d+\s*--\s*$|^\d+\)\s*(?:or|and)\b"
        ),
    ),
    (
        "time-based blind",
        re.compile(
            r"\bwaitfor\s+delay\b|\b(?:or|and)\s+sleep\s*\(|\bsleep\s*\(\s*\d|\bpg_sleep\s*\(|\bbenchmark\s*\(\s*\d|"
            r"dbms_pipe\.receive_message|dbms_lock\.sleep|\bwai?t?for\s+delay"
        ),
    ),
    (
        "catalog/system enumeration",
        re.compile(
            r"@@(?:version|servername|hostname|datadir)|\binformation_schema\b|\bsysibm\.|\bsysobjects\b|\bsyscat\.|"
            r"\bcurrent_setting\s*\(|\bpg_read_file\s*\(|\butl_(?:http|inaddr)\b|\bsys_context\s*\(|"
            r"\bsyscolumns\b|\bsys\.(?:tables|objects|databases|sql_logins)|\bpg_(?:user|shadow|group|datab"
            r"ase|"
            r"tables|catalog|roles|authid)\b|\bmysql\.user\b|\bsqlite_master\b|\ball_tables\b|\bdba_users\b|"
            r"\bv\$version\b|\bxp_cmdshell\b|\bsp_executesql\b|\bsp_oacreate\b|\bload_file\s*\(|"
            r"\binto\s+(?:out|dump)file\b|\bcurrent(?:_| )(?:user|database|server|schema)\b|"
            r"\bversion\s*\(\s*\)|\bdatabase\s*\(\s*\)|\buser\s*\(\s*\)|\bdeclare\s+@\w+|"
            r"\bexec(?:ute)?\s*(?:\(|@|master\.)|\bchar\s*\(\s*\d+\s*\)\s*(?:\+|\|\||,)|\bchr\s*\(\s*\d+\s*"
            r"\)\s*\|\|"
        ),
    ),
)
_SQL_GATE = (
    "'",
    '"',
    ";",
    "--",
    "/*",
    "#",
    " or ",
    " and ",
    "union",
    "select",
    "sleep",
    "waitfor",
    "waifor",
    "benchmark",
    "@@",
    "exec",
    "declare",
    "char(",
    "schema",
    "sys",
    "pg_",
    "current",
    "(",
    "or ",
)

_CMDS = (
    r"(?:whoami|uname|wget|curl|bash|zsh|ksh|nc|ncat|netcat|powershell|pwsh|cmd(?:\.exe)?|python[\d.]*|perl"
    r"|ruby|"
    r"php|nslookup|chmod|chown|telnet|ifconfig|ipconfig|netstat|systeminfo|certutil|bitsadmin|mshta|rundll32|"
    r"regsvr32|xxd|mkfifo|crontab|nohup|tftp|sudo|reboot|rm\s+-\w+|ls\s+-\w+|cat\s+[/~.$]|id(?=\s*(?:[;&|`#]|$))|"
    r"sleep\s+\d|ping\s+-\w+|ping\s+\d|echo\s+\S+\s*[;|>]|sh(?=\s*(?:[;&|`]|$|\s+-))|type\s+[a-z]:|"
    r"dir\s+[a-z]:|dir(?=\s*(?:[;&|`]|$))|net\s+(?:user|localgroup|view)|ps\s+(?:aux|-ef)|find\s+/|"
    r"kill\s+-9|shutdown\s+-|env(?=\s*(?:[;&|`]|$)))"
)
_SHELL = (
    (
        "command separator followed by a command",
        re.compile(r"(?:[;&|`\n]|\$\()[\s+]*(?:/?(?:usr/)?s?bin/)?" + _CMDS + r"(?![\w-])"),
    ),
    ("absolute binary after separator", re.compile(r"(?:[;&|`(]|^\s*\n)[\s+]*/(?:usr/)?s?bin/\w+")),
    (
        "command substitution",
        re.compile(r"\$\([^)]{1,200}\)|`\s*" + _CMDS + r"[^`\n]{0,200}`|\$\{ifs\}|\$ifs\b"),
    ),
    ("variable execution", re.compile(r"[;&|][\s+]*\$\w+|\bcmd\s*=\s*\$|\{cmd\}")),
    (
        "code execution function",
        re.compile(
            r"<!--\s*#\s*exec\b|\b(?:system|passthru|shell_exec|popen|proc_open|pcntl_exec)\s*\(|"
            r"\bos\.(?:system|popen)\s*\(|\bsubprocess\.\w+\s*\(|runtime\.getruntime\(\)\.exec|\bexec\s*\("
            r"\s*['\"]"
        ),
    ),
    (
        "dangerous command",
        re.compile(
            r"/etc/(?:passwd|shadow)\b|\bcmd(?:\.exe)?\s+/c\b|\bpowershell(?:\.exe)?\s+-|\bnc(?:at)?\s+-[a-"
            r"z]*[elp]|"
            r"\bbash\s+-i\b|>\s*&?\s*/dev/tcp/|\b(?:wget|curl)\s+[^|;]*\|\s*(?:ba|z)?sh\b|\brm\s+-rf\s+/|"
            r"\bmkfifo\s+/tmp/"
        ),
    ),
)
_SHELL_GATE = (
    ";",
    "|",
    "&",
    "`",
    "$",
    "\n",
    "(",
    "/bin/",
    "exec",
    "cmd",
    "/etc/",
    "powershell",
    "nc ",
    "bash",
)

_SENSITIVE_FILE = (
    r"(?:etc/(?:passwd|shadow|group|hosts|issue|sudoers|hostname)|boot\.ini|win\.ini|system\.ini|"
    r"windows[/\\]system32|web\.config|\.htaccess|\.htpasswd|id_rsa|id_ed25519|\.ssh[/\\]|\.aws[/\\]credent"
    r"ials|"
    r"\.env\b|proc[/\\]self|config\.(?:php|asp|inc|ini)|(?:access|error)[_.]log|httpd\.conf|php\.ini|my\.cnf|"
    r"\.bash_history|\.git[/\\]config|wp-config\.php)"
)
_PATH = (
    (
        "traversal sequence",
        re.compile(
            r"(?:\.{2,}[/\\]+){2,}|(?:\.\.(?:2f|5c|0x2f|0x5c)){2,}|\.{4}/{2}|\.\.(?:0x2f|0x5c|%2f|%5c|;/)|"
            r"(?:^|[/\\=])\.\.[/\\]+(?:\{\w+\}|[\w.-]*(?:passwd|shadow|\.ini|\.conf|\.cnf|\.log|\.xml|\.db|\.env\b))"
        ),
    ),
    ("traversal to sensitive file", re.compile(r"\.\.[/\\].*" + _SENSITIVE_FILE)),
    (
        "absolute path to system location",
        re.compile(
            r"^(?:file://)?(?:[a-z]:)?[/\\]+(?:etc|proc|sys|root|boot|dev|var[/\\](?:log|adm|lib|mail|spool"
            r"|run|www|"
            r"db|backups)|var/?$|usr[/\\](?:local[/\\])?(?:etc|apache\d*|lib)|opt[/\\]|windows|winnt|inetpub|"
            r"apache\d*[/\\]|xampp|lampp|program files|home[/\\][^/\\]+[/\\]\.|users[/\\][^/\\]+[/\\](?:\.|"
            r"appdata))"
            r"|^~?(?:[a-z]:)?[/\\]+[^\s]*[/\\]etc[/\\]|^~[/\\]+[^\s]*"
            + _SENSITIVE_FILE
            + r"|^(?:[a-z]:)?[/\\]+[^\s]*"
            + _SENSITIVE_FILE
            + r"|^[/\\][\w.-]+\.(?:asp|aspx|php|jsp|ini|conf|cfg|inc)$"
        ),
    ),
    ("null byte in path", re.compile(r"\x00|%00|\\0")),
)

_XSS = (
    (
        "script-capable tag",
        re.compile(
            r"<\s*/?\s*(?:script|iframe|object|embed|applet|svg|math|base|frameset|frame|isindex|xss|"
            r"img[^>]*(?:\bon\w+|src\s*=\s*['\"]?\s*(?:javascript|vbscript|data)|lowsrc|dynsrc)|"
            r"body[^>]*\bon\w+|meta[^>]*refresh|link[^>]*(?:import|stylesheet)|style[^>]*>[^<]*(?:@import|e"
            r"xpression|url\()|"
            r"\?xml|\?import|t:set|html[^>]*xmlns)"
        ),
    ),
    (
        "XSS cheat-sheet entry",
        re.compile(r"^\s*(?:exploit (?:name|string|description|tags)|author name)\s*:"),
    ),
    ("script URL", re.compile(r"(?:java|vb|live)script\s*:|data\s*:\s*text/html|data\s*:[^,]*;base64")),
    ("event handler attribute", re.compile(r"(?:<[^>]*[\s/\"']|['\"]\s*)on[a-z]{3,}\s*=")),
    (
        "script sink or payload",
        re.compile(
            r"expression\s*\(|-moz-binding|behaviou?r\s*:\s*url|document\.(?:cookie|domain|write|location)|"
            r"window\.location|\b(?:alert|prompt|confirm)\s*[(`]|string\.fromcharcode|\beval\s*\(|"
            r"\bsettimeout\s*\(|\bxmlhttprequest\b|\.innerhtml\s*=|location\.(?:search|hash)|"
            r"<\s*/\s*(?:script|title|textarea|style|noscript|iframe)\b|@import\s*['\"]|"
            r"(?:^|[;,({])\s*[a-z_$][\w$]*\s*=\s*(?:eval|alert|prompt|confirm|settimeout|function\s*\()\b|"
            r"\b(?:eval|alert)\s*\)|\[\s*['\"]\w*['\"]\s*\]\s*\(|<!--(?!.*-->)|<\s*/?\s*_\s*>|"
            r"\b(?:top|self|parent|this|window|frames)\s*\[\s*['\"`]|\bconstructor\s*\(|\batob\s*\("
        ),
    ),
)


_B64_VALUE = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_PLUS_SPACE = re.compile(r"\+(?=[|;&$<>`\w-])|(?<=[|;&$<>`])\+")


def _b64_value(text: str) -> str | None:
    """The printable ASCII text a whole-value Base64 argument decodes to, if any."""
    body = text.strip()
    if len(body) > 4096 or not _B64_VALUE.fullmatch(body) or body.isalpha() or body.isdigit():
        return None
    try:
        raw = base64.b64decode(
            body + "=" * (-len(body.rstrip("=")) % 4), altchars=b"-_" if "-" in body or "_" in body else None
        )
    except (binascii.Error, ValueError):
        return None
    if not raw.isascii() or not raw.decode("ascii").isprintable():
        return None
    return raw.decode("ascii")


def _views(text: str) -> tuple[str, bool]:
    """A lowered view with URL/HTML/overlong/Base64 encodings undone; and whether it differs."""
    view = text
    encoded = "%" in view
    if encoded:
        view = _OVERLONG.sub(
            lambda m: "." if m.group().endswith(("ae", "2e", "u002e", "uff0e")) else "/", view.lower()
        )
        for _ in range(3):
            decoded = unquote(view)
            if decoded == view:
                break
            view = decoded
    if "&" in view:
        view = html.unescape(view)
    if "+" in view and (encoded or _PLUS_SPACE.search(view)):
        view = view.replace("+", " ")
    if "\\n" in view or "\\r" in view:
        view = view.replace("\\n", "\n").replace("\\r", "\n")
    b64 = _b64_value(view)
    if b64 is not None:
        view = b64
    view = view.replace("\\0", "").lower()
    return view, view != text.lower()


def _run(  # noqa: PLR0917 - a private helper called with one fixed shape
    rules: tuple[tuple[str, re.Pattern[str]], ...],
    kind: str,
    severity: Severity,
    text: str,
    view: str,
    decoded: bool,
) -> list[Hit]:
    hits = []
    for tactic, pattern in rules:
        m = pattern.search(view)
        if m is None:
            continue
        if decoded:
            hits.append(Hit(kind, "attack", severity, 0, len(text), f"{tactic} (after decoding)"))
        else:
            hits.append(Hit(kind, "attack", severity, m.start(), m.end(), tactic))
        break
    return hits


def detect_attacks(text: str, families: frozenset[str] | None = None) -> list[Hit]:
    """SQL/shell injection, path traversal and XSS shapes in one argument string.

    ``families``: the attack anchor families found in ``text`` (see :mod:`anchors`); when
    given, only those detectors run (plus the ones anchored in the decoded view).
    """
    if len(text) < 3:
        return []
    view, decoded = _views(text)
    if families is None:
        wanted = {"sql", "shell", "path", "xss"}
    else:
        wanted = set(families)
        if decoded:
            wanted.update(find_anchors([view], _ATTACK_FAMILIES).get(0, {}))
        if "\x00" in text or "%00" in view:
            wanted.add("path")
    hits: list[Hit] = []
    if "sql" in wanted and contains_any(view, _SQL_GATE):
        hits += _run(_SQL, "SQL_INJECTION", Severity.HIGH, text, view, decoded)
    if "shell" in wanted and contains_any(view, _SHELL_GATE):
        hits += _run(_SHELL, "SHELL_INJECTION", Severity.HIGH, text, view, decoded)
    if "path" in wanted and ("." in view or "/" in view or "\\" in view or "%00" in view or "\x00" in view):
        stripped = view.strip()
        hits += _run(
            _PATH, "PATH_TRAVERSAL", Severity.HIGH, text, stripped if " " not in stripped else view, decoded
        )
    if "xss" in wanted:
        hits += _run(_XSS, "XSS", Severity.HIGH, text, view, decoded)
    return hits
