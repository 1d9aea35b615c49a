"""Load a policy folder: parse every file, compile, check across files, build a PolicySet.

Only the folder's top-level ``*.yaml``, ``*.yml``, ``*.json`` and ``*.rego`` files
are policy files (sorted by name, which fixes their order); subfolders such as
``tests/`` are ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from fnmatch import fnmatchcase
from pathlib import Path

from mcp_guard.config.yaml_source import load_yaml
from mcp_guard.controls.config import RawSpec, parse_limit_specs
from mcp_guard.decision import Decision
from mcp_guard.errors import ConfigError
from mcp_guard.policy.actions import ActionClassifier
from mcp_guard.policy.compiler import CompiledRule, compile_rule, shadowed_warnings, unknown_glob_warnings
from mcp_guard.policy.diagnostics import Diagnostics, Located
from mcp_guard.policy.engine import DEFAULT_THRESHOLDS, ExternalEngine, PolicySet
from mcp_guard.policy.rego import RegoModule
from mcp_guard.policy.rego_check import load_rego
from mcp_guard.policy.syntax import FileSpec, parse_file

YAML_SUFFIXES = (".yaml", ".yml", ".json")


def policy_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in (*YAML_SUFFIXES, ".rego")
    )


def load_policy_dir(path: str | Path, known_tools: Collection[str] | None = None) -> PolicySet:
    """Load, check and compile every policy file in ``path`` (a folder or one file).

    The operational controls in the files (``limits``, ``budgets``, ...) are validated
    too, as ``mcp-guard serve`` validates them.

    Raises:
        ConfigError: with one ``file:line: message`` per problem, all at once.
    """
    root = Path(path)
    if not root.exists():
        raise ConfigError([f"{root}:0: policy folder does not exist"])
    try:
        files = policy_files(root)
    except OSError as exc:  # a ConfigError, so a reload keeps the running set instead of crashing
        raise ConfigError([f"{root}:0: cannot list the policy folder: {exc.strerror or exc}"]) from None
    diag = Diagnostics()
    specs: list[FileSpec] = []
    modules: list[RegoModule] = []
    for file in files:
        if file.suffix == ".rego":
            try:
                modules.append(RegoModule(str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                diag.errors.append(f"{file}:0: cannot read file: {exc}")
            continue
        try:
            doc = load_yaml(file)
        except ConfigError as exc:
            diag.errors.extend(exc.problems)
            continue
        specs.append(parse_file(doc, diag))
    rules = _compile(specs, diag)
    default = _single_setting(specs, "default", diag)
    thresholds = _single_setting(specs, "risk_thresholds", diag)
    engines: list[ExternalEngine] = []
    if modules:
        rego = load_rego(modules, diag.errors, diag.warnings)
        if rego is not None:
            engines.append(rego)
    limit_specs: list[RawSpec] = [raw for s in specs for raw in s.limit_specs]
    try:
        parse_limit_specs(limit_specs)  # as `serve` will: a bad control is a bad policy folder
    except ConfigError as exc:
        diag.errors.extend(exc.problems)
    if diag.errors:
        raise ConfigError(diag.errors)
    ordered = sorted(rules, key=lambda r: r.sort_key)
    warnings = [*diag.warnings, *shadowed_warnings(ordered)]
    if known_tools is not None:
        warnings += unknown_glob_warnings(ordered, known_tools)
        warnings += _unknown_action_globs(specs, known_tools)
    if not specs and not modules:
        warnings.append(f"{root}:0: no policy files found; every call gets the default ALLOW")
    classifier = ActionClassifier((glob, classes) for s in specs for glob, classes, _ in s.actions)
    return PolicySet(
        ordered,
        default=default[0] if isinstance(default[0], Decision) else Decision.ALLOW,
        risk_thresholds=thresholds[0] if isinstance(thresholds[0], dict) else DEFAULT_THRESHOLDS,
        classifier=classifier,
        engines=engines,
        limit_specs=limit_specs,
        warnings=warnings,
        files=[s.doc.file for s in specs] + [m.file for m in modules],
        digest=_digest(files),
    )


def _digest(files: list[Path]) -> str:
    """SHA-256 over the policy files' names and bytes (for audit records of reloads)."""
    h = hashlib.sha256()
    for file in files:
        h.update(file.name.encode() + b"\0")
        try:
            h.update(file.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
        h.update(b"\0")
    return h.hexdigest()


def _compile(specs: list[FileSpec], diag: Diagnostics) -> list[CompiledRule]:
    seen: dict[str, Located] = {}
    out: list[CompiledRule] = []
    order = 0
    for spec in specs:
        for rule in spec.rules:
            first = seen.get(rule.id)
            if first is not None:
                where = first.doc.where(first.path)
                rule.loc.at("id").error(f"duplicate rule id '{rule.id}' (first defined at {where})")
                continue
            seen[rule.id] = rule.loc
            compiled = compile_rule(rule, order, spec.shadow)
            order += 1
            if compiled is not None:
                out.append(compiled)
    return out


def _single_setting(specs: list[FileSpec], key: str, diag: Diagnostics) -> tuple[object, Located | None]:
    found: tuple[object, Located] | None = None
    for spec in specs:
        value = spec.default if key == "default" else spec.risk_thresholds
        if value is None:
            continue
        if found is not None:
            where = found[1].doc.where(found[1].path)
            value[1].error(f"'{key}' is already set in {where}; set it in one file only")
            continue
        found = value
    return found if found is not None else (None, None)


def _unknown_action_globs(specs: list[FileSpec], known_tools: Collection[str]) -> list[str]:
    return [
        f"{loc.doc.where(loc.path)}: actions: tool pattern '{glob}' matches no known tool"
        for spec in specs
        for glob, _, loc in spec.actions
        if not any(fnmatchcase(t, glob) for t in known_tools)
    ]
