"""Loading Rego policies, and evaluating them in a child process: fail closed either way.

The engine (:mod:`mcp_guard.policy.rego_engine`) never runs in this process (its module
docstring says why). Loading runs its checks in a short-lived child; only when the
child reports no problem does :class:`RegoProcess` start the long-lived child that
answers the gateway's queries. If that child crashes, hangs past
:data:`QUERY_TIMEOUT_S` or answers nonsense, the call in question is BLOCKed with the
reason and the next call starts a fresh child.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, Any, TypeVar

from mcp_guard.decision import Decision
from mcp_guard.policy.engine import EngineOutcome
from mcp_guard.policy.rego import (
    RegoModule,
    RegoQueryError,
    declares_entrypoint_package,
    parse_outcome,
    rego_input,
    suspicious_references,
)
from mcp_guard.policy.types import PolicyRequest

CHILD_TIMEOUT_S = 60.0
"""How long the load-time checks, or the start of the engine, may take."""
QUERY_TIMEOUT_S = 2.0
"""How long one decision may take before the child is killed and the call BLOCKed."""
T = TypeVar("T")
_ENGINE = [sys.executable, "-m", "mcp_guard.policy.rego_engine"]


def load_rego(
    modules: Sequence[RegoModule], errors: list[str], warnings: list[str] | None = None
) -> RegoProcess | None:
    """Check and load ``modules``; ``None`` after appending ``file:line`` problems to ``errors``.

    Likely typos (references to names bound nowhere) are appended to ``warnings``.
    """
    if warnings is not None:
        warnings.extend(suspicious_references(modules))
    if not declares_entrypoint_package(modules):
        errors.append(f"{modules[0].file}:1: no module declares 'package mcpguard' (with a 'decision' rule)")
        return None
    problems = _check_in_child(modules)
    if problems:
        errors.extend(problems)
        return None
    policy = RegoProcess(modules)
    try:
        policy.start()  # now, not on the first call (the engine answers an empty request as it starts)
    except RegoQueryError as exc:
        errors.append(f"{modules[0].file}:1: Rego policy failed after its self-check: {exc}")
        return None
    return policy


def _check_in_child(modules: Sequence[RegoModule]) -> list[str]:
    cmd = [*_ENGINE, "check", *(m.file for m in modules)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return [f"{modules[0].file}:1: Rego self-check did not finish within {CHILD_TIMEOUT_S:g}s"]
    if proc.returncode != 0:
        last = [ln for ln in proc.stderr.splitlines() if ln.startswith("checking ")]
        where = last[-1][len("checking ") :] if last else f"{modules[0].file}:1"
        return [
            f"{where}: regopy crashed (exit code {proc.returncode}) while checking this; "
            "the modules are refused. Known trigger: 'x in {...}' in a rule that a test "
            "evaluates 'with input as' -- compare with == or use a helper set instead"
        ]
    try:
        problems = json.loads(proc.stdout)
    except ValueError:
        return [f"{modules[0].file}:1: Rego self-check gave unreadable output"]
    return [str(p) for p in problems]


class RegoProcess:
    """The folder's Rego modules as one decision source (an ``ExternalEngine``), evaluated
    by a child process that this object owns: started on the first query, stopped by
    :meth:`close` or when the object is collected (a policy reload), and gone with the
    gateway (it exits when its stdin closes). Queries are serialised by a lock."""

    def __init__(self, modules: Sequence[RegoModule]) -> None:
        self.modules = tuple(modules)
        self.name = ", ".join(Path(m.file).name for m in modules)
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None
        self._stop_child: weakref.finalize[[subprocess.Popen[str]], RegoProcess] | None = None

    def decide(self, req: PolicyRequest) -> EngineOutcome:
        try:
            raw = self.query(rego_input(req))
        except RegoQueryError as exc:
            return EngineOutcome(Decision.BLOCK, ("rego-error",), f"Rego policy failed: {exc}", "rego")
        return parse_outcome(raw)

    def query(self, document: dict[str, Any]) -> Any:
        """The entrypoint's value for ``document``.

        Raises:
            RegoQueryError: the query failed, or the child crashed, hung or is gone
                (it is then stopped, and the next query starts a new one).
        """
        line = json.dumps(document, default=str) + "\n"
        with self._lock:
            answer = self._locked(lambda: _exchange(self._running(), line, QUERY_TIMEOUT_S))
        if "error" in answer:
            raise RegoQueryError(str(answer["error"]))
        return answer.get("value")

    def start(self) -> None:
        """Start the child now if it is not running.

        Raises:
            RegoQueryError: it cannot be started, or refuses the modules.
        """
        with self._lock:
            self._locked(self._running)

    def close(self) -> None:
        """Stop the child (the next query starts another)."""
        if self._stop_child is not None:
            self._stop_child()
        self._child = self._stop_child = None

    def _locked(self, work: Callable[[], T]) -> T:
        """``work`` (the caller holds the lock); any failure stops the child."""
        try:
            return work()
        except RegoQueryError:
            self.close()
            raise

    def _running(self) -> subprocess.Popen[str]:
        """The child, started (and handed the modules) if it is not running."""
        if self._child is not None:
            return self._child
        try:
            child = subprocess.Popen(
                [*_ENGINE, "serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        except OSError as exc:
            raise RegoQueryError(f"cannot start the Rego engine: {exc}") from None
        self._child = child
        self._stop_child = weakref.finalize(self, _stop, child)
        modules = [{"file": m.file, "source": m.source} for m in self.modules]
        _exchange(child, json.dumps(modules) + "\n", CHILD_TIMEOUT_S)  # its imports take a while
        return child


def _exchange(child: subprocess.Popen[str], line: str, timeout_s: float) -> dict[str, Any]:
    """Send one line to ``child`` and read its one-line answer within ``timeout_s``.

    Raises:
        RegoQueryError: the child is gone, silent past the timeout, or unreadable.
    """
    stdin, stdout = child.stdin, child.stdout
    assert stdin is not None and stdout is not None
    try:
        stdin.write(line)
        stdin.flush()
        if not _readable_within(stdout, timeout_s):
            raise RegoQueryError(f"the Rego engine did not answer within {timeout_s:g}s; it was stopped")
        text = stdout.readline()
    except OSError:
        text = ""
    if not text:
        try:
            code: int | None = child.wait(timeout=1.0)  # it closed its stdout: it is ending
        except subprocess.TimeoutExpired:
            code = None
        raise RegoQueryError(f"the Rego engine stopped (exit code {code}); a new one starts on the next call")
    try:
        answer = json.loads(text)
    except ValueError:
        raise RegoQueryError(f"the Rego engine answered {text[:120]!r}") from None
    if not isinstance(answer, dict):
        raise RegoQueryError(f"the Rego engine answered {text[:120]!r}")
    return answer


def _readable_within(stream: IO[str], timeout_s: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        return bool(sel.select(timeout_s))


def _stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with suppress(OSError):
                stream.close()


__all__ = ["QUERY_TIMEOUT_S", "RegoProcess", "load_rego"]
