"""``${ENV_VAR}`` interpolation for configuration values (secrets stay out of files)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mcp_guard.config.yaml_source import PathKey, YamlDocument

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(doc: YamlDocument, environ: Mapping[str, str], problems: list[str]) -> Any:
    """Return ``doc.data`` with ``${VAR}`` / ``${VAR:-default}`` replaced in every string.

    ``$$`` is a literal ``$``. A variable that is unset and has no default is
    reported in ``problems`` as ``file:line: key: environment variable VAR is not set``.
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
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        key = ".".join(str(p) for p in path)
        problems.append(f"{doc.where(path)}: {key}: environment variable {name} is not set")
        return ""

    return _VAR.sub(replace, text)
