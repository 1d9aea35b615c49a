"""The Rego engine (regopy, rego-cpp), run only in a child process of its own.

Two reasons it never runs in the gateway's process:

* regopy can crash the whole process (segfault, abort) on valid policies -- seen with
  ``x in {...}`` inside a rule evaluated by a test using ``with input as``;
* it cannot share a process with google-re2 (which the gateway uses for inspection and
  policy regexes): both wheels carry copies of parts of the C++ standard library, and
  with google-re2 loaded, regopy's date builtins (``time.weekday``, ``time.date``,
  ``time.clock``) abort the process with ``free(): invalid pointer``.

So ``python -m mcp_guard.policy.rego_engine check FILE...`` runs the load-time checks
and prints the problems as JSON, and ``... serve`` reads the modules as one JSON line
on stdin and then answers one query per line (:class:`mcp_guard.policy.rego_check.RegoProcess`
is its client). This module must not import google-re2, directly or not; ``main``
refuses to run if it has been.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import regopy  # type: ignore[import-untyped]
from regopy.rego_shared import (  # type: ignore[import-untyped]
    rego_bundle_query_entrypoint,
    rego_output_ok,
    rego_output_string,
    rego_query,
)

from mcp_guard.policy.rego import (
    DEFINED,
    EMPTY_REQUEST,
    ENTRYPOINT,
    RegoModule,
    RegoQueryError,
    code_only,
    parse_outcome,
    test_rules,
)

_KEYWORDS = frozenset(
    [
        "if",
        "else",
        "some",
        "every",
        "in",
        "not",
        "with",
        "as",
        "contains",
        "default",
        "import",
        "package",
        "true",
        "false",
        "null",
        "or",
    ]
)
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\(")
_ERR_LOC = re.compile(r"\(error \d+:([^|]*)\|(\d+)\|")
_ERR_MSG = re.compile(r"\(errormsg \d+:([^)]*)\)")


def new_interpreter() -> Any:
    interp = regopy.Interpreter()
    interp.log_level = regopy.LogLevel.NONE
    interp.strict_built_in_errors = True
    return interp


def _read_output(out: Any) -> Any:
    text = rego_output_string(out)
    if not rego_output_ok(out) or text.startswith("(error") or text == "<error>":
        raise RegoQueryError(_error_text(text))
    if text.strip() == "undefined":
        raise RegoQueryError("undefined")
    try:
        parsed = json.loads(text)
    except ValueError:
        raise RegoQueryError(f"unreadable output {text[:120]!r}") from None
    results = parsed if isinstance(parsed, list) else [parsed]
    if len(results) != 1 or not results[0].get("expressions"):
        raise RegoQueryError(f"expected one result, got {text[:120]!r}")
    return results[0]["expressions"][0]


def _error_text(text: str) -> str:
    msgs = _ERR_MSG.findall(text)
    if msgs:
        return "; ".join(msgs)
    if text.strip() == "<error>":
        return "evaluation error (a builtin error, or conflicting values for a complete rule)"
    return text.strip()[:200]


def rego_error_location(exc: BaseException, module: RegoModule) -> tuple[int, str]:
    """(line, message) of a regopy load error."""
    text = str(exc)
    msgs = _ERR_MSG.findall(text)
    line = 1
    m = _ERR_LOC.search(text)
    if m and m.group(2).isdigit():
        line = module.source.count("\n", 0, int(m.group(2))) + 1
    return line, "; ".join(msgs) if msgs else text.strip().splitlines()[0] if text.strip() else "error"


def static_problems(modules: Sequence[RegoModule], interp: Any) -> list[str]:
    """Refusals found by reading the source: ``(?i)`` regexes and unknown functions."""
    problems: list[str] = []
    defined: set[str] = set()
    for m in modules:
        defined.update(DEFINED.findall(code_only(m.source)))
    for m in modules:
        for lineno, raw_line in enumerate(m.source.splitlines(), start=1):
            if "(?i)" in raw_line and not raw_line.lstrip().startswith("#"):
                problems.append(
                    f"{m.file}:{lineno}: regex flag (?i) is not supported by regopy (the match is "
                    "silently undefined); lower-case the text with lower() and match lower-case"
                )
            code = code_only(raw_line)
            for name in _CALL.findall(code):
                if name in _KEYWORDS or name.split(".")[-1] in defined or name in defined:
                    continue
                if name.startswith(("data.", "input.")):
                    continue
                if not interp.is_builtin(name):
                    problems.append(f"{m.file}:{lineno}: unknown function '{name}' (not a builtin or rule)")
    return problems


def run_query(interp: Any, query: str) -> Any:
    """Evaluate a plain query; raises RegoQueryError."""
    return _read_output(rego_query(interp._impl, query))


class RegoPolicy:
    """The modules in one interpreter, evaluated in this process (the engine's child)."""

    def __init__(self, modules: Sequence[RegoModule]) -> None:
        self.modules = tuple(modules)
        self._built: tuple[Any, Any] | None = None

    def query(self, document: dict[str, Any]) -> Any:
        """Evaluate the entrypoint for ``document``; raises RegoQueryError on any error."""
        interp, bundle = self._interpreter()
        try:
            interp.set_input_term(json.dumps(document, default=str))
        except regopy.RegoError as exc:
            raise RegoQueryError(f"bad input: {exc}") from None
        out = rego_bundle_query_entrypoint(interp._impl, bundle._impl, ENTRYPOINT)
        return _read_output(out)

    def _interpreter(self) -> tuple[Any, Any]:
        if self._built is None:
            interp = new_interpreter()
            for m in self.modules:
                interp.add_module(m.file, m.source)
            bundle = interp.build(None, [ENTRYPOINT])
            if not bundle.ok():
                raise RegoQueryError("bundle build failed")
            self._built = (interp, bundle)
        return self._built


def check_modules(modules: Sequence[RegoModule]) -> list[str]:
    """Every problem that refuses ``modules``: unknown functions and ``(?i)`` regexes,
    modules that do not compile, failing ``test_`` rules, an entrypoint that is undefined
    for an empty request."""
    interp = new_interpreter()
    problems = static_problems(modules, interp)
    for m in modules:
        _progress(f"{m.file}:1")
        try:
            interp.add_module(m.file, m.source)
        except regopy.RegoError as exc:
            line, msg = rego_error_location(exc, m)
            problems.append(f"{m.file}:{line}: Rego error: {msg}")
    if problems:
        return problems
    for m in modules:
        for pkg, name, line in test_rules(m):
            _progress(f"{m.file}:{line}")
            try:
                value = run_query(interp, f"data.{pkg}.{name}")
            except RegoQueryError as exc:
                problems.append(f"{m.file}:{line}: Rego test '{name}' failed: {exc}")
                continue
            if value is not True:
                problems.append(f"{m.file}:{line}: Rego test '{name}' failed (got {value!r}, expected true)")
    _progress(f"{modules[0].file}:1")
    try:
        outcome = parse_outcome(RegoPolicy(modules).query(EMPTY_REQUEST))
    except RegoQueryError as exc:
        entry = "data." + ENTRYPOINT.replace("/", ".")
        problems.append(
            f"{modules[0].file}:1: {entry} failed for an empty request ({exc}); add "
            '\'default decision := {"decision": "ALLOW", "rules": []}\''
        )
        return problems
    if "rego-error" in outcome.rules:
        problems.append(f"{modules[0].file}:1: {outcome.reason}")
    return problems


def serve(source: TextIO, sink: TextIO) -> None:
    """Answer queries until ``source`` ends: the first line holds the modules
    (``[{"file", "source"}, ...]``), each later line one input document; each answer is
    one line, ``{"value": ...}`` or ``{"error": "..."}`` (the first answers the modules)."""
    policy: RegoPolicy | None = None
    for line in source:
        try:
            if policy is None:
                policy = RegoPolicy([RegoModule(m["file"], m["source"]) for m in json.loads(line)])
                policy.query(EMPTY_REQUEST)  # builds the interpreter: a bad bundle fails here
                answer: dict[str, Any] = {"value": None}
            else:
                answer = {"value": policy.query(json.loads(line))}
        except RegoQueryError as exc:
            answer = {"error": str(exc)}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"error": f"unreadable request: {exc}"}
        sink.write(json.dumps(answer) + "\n")
        sink.flush()


def _progress(where: str) -> None:
    print(f"checking {where}", file=sys.stderr, flush=True)


def main(argv: Sequence[str]) -> int:
    if "re2" in sys.modules:  # see the module docstring
        print(
            "mcp_guard.policy.rego_engine: google-re2 was imported into the Rego engine's process",
            file=sys.stderr,
        )
        return 3
    if argv[:1] == ["serve"]:
        serve(sys.stdin, sys.stdout)
        return 0
    if argv[:1] == ["check"]:
        modules = [RegoModule(f, Path(f).read_text(encoding="utf-8")) for f in argv[1:]]
        print(json.dumps(check_modules(modules)))
        return 0
    print("usage: python -m mcp_guard.policy.rego_engine (check FILE... | serve)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
