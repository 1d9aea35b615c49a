"""``${ENV_VAR}`` interpolation for configuration values (secrets stay out of files).

The grammar, in every string value (keys are never interpolated)::

    $$                  a literal "$"
    ${NAME}             the variable's value; an unset variable is an error
    ${NAME:-default}    the variable's value, or ``default`` when it is not set
    NAME                [A-Za-z_][A-Za-z0-9_]*
    default             any text without "$", "{" or "}", except "$$" for a literal "$"

Any other ``${`` is an error (e.g. ``${A:-${B}}``, ``${X-y}``, ``${X:=y}``, ``${bad-name}``,
``${}``, an unclosed ``${X``). A ``$`` not followed by ``{`` or ``$`` is kept as it is
(``$VAR``, ``$1``: files pasted from MCP hosts hold such arguments).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mcp_guard.config.yaml_source import PathKey, YamlDocument, dotted

_TOKEN = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>(?:[^${}]|\$\$)*))?\}"
    r"|(?P<bad>\$\{[^}]*\}?)"
)
"""An escaped ``$``, a reference, or a malformed reference (anything else from ``${`` to ``}``)."""


def interpolate(doc: YamlDocument, environ: Mapping[str, str], problems: list[str]) -> Any:
    """Return ``doc.data`` with ``${VAR}`` / ``${VAR:-default}`` replaced in every string.

    An unset variable without a default, or a malformed reference, is reported in
    ``problems`` as ``file:line: key: message``.
    """
    return _walk(doc.data, (), doc, environ, problems)


def _walk(
    value: Any, path: PathKey, doc: YamlDocument, environ: Mapping[str, str], problems: list[str]
) -> Any:
    if isinstance(value, str):
        return _substitute(value, path, doc, environ, problems)
    if isinstance(value, dict):
        return {k: _walk(v, (*path, str(k)), doc, environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), doc, environ, problems) for i, v in enumerate(value)]
    return value


def _substitute(
    text: str, path: PathKey, doc: YamlDocument, environ: Mapping[str, str], problems: list[str]
) -> str:
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name, default, bad = match.group("name", "default", "bad")
        if bad is not None:
            problems.append(
                f"{doc.where(path)}: {dotted(path)}: malformed reference '{bad}' "
                "(expected ${NAME} or ${NAME:-default}; $$ is a literal $)"
            )
            return ""
        if name is None:
            return "$"
        if name in environ:
            return environ[name]
        if default is not None:
            return default.replace("$$", "$")
        problems.append(f"{doc.where(path)}: {dotted(path)}: environment variable {name} is not set")
        return ""

    return _TOKEN.sub(replace, text)
