"""Hot reload: hold the running PolicySet and swap it atomically, or not at all."""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

import anyio

from mcp_guard.errors import ConfigError
from mcp_guard.policy.engine import PolicySet
from mcp_guard.policy.loader import load_policy_dir, policy_files

OnReload = Callable[[PolicySet | None, ConfigError | None], Awaitable[None]]


class PolicyStore:
    """The current policy set of a folder.

    ``current()`` is always a fully loaded set: :meth:`reload` builds a new set from the
    folder and swaps it in with one reference assignment, or leaves the old one running.
    """

    def __init__(self, path: str | Path, known_tools: Collection[str] | None = None) -> None:
        """Load the folder. Raises ConfigError when it is invalid (there is no old set yet)."""
        self.path = Path(path)
        self.known_tools = known_tools
        self._lock = threading.Lock()
        self._current = load_policy_dir(self.path, known_tools)
        self._fingerprint = self._stat()
        self._from_files = bool(self._fingerprint)
        """Whether the running set was loaded from at least one file."""

    def current(self) -> PolicySet:
        """The running set (always a fully loaded one)."""
        return self._current

    def reload(self) -> PolicySet:
        """Load the folder again and swap the new set in.

        Raises:
            ConfigError: the folder is invalid, or it held policy files and holds none now
                (a deploy caught half-way, a mistaken ``rm``: an empty set would allow
                everything); the previous set stays current.
        """
        with self._lock:
            fingerprint = self._stat()
            new = load_policy_dir(self.path, self.known_tools)
            if self._from_files and not fingerprint:
                raise ConfigError(
                    [
                        f"{self.path}:0: the policy folder holds no policy files any more; the running "
                        "policies stay (restart the gateway to run without any)"
                    ]
                )
            self._current = new
            self._fingerprint = fingerprint
            self._from_files = bool(fingerprint)
            return new

    def try_reload(self) -> tuple[PolicySet, ConfigError | None]:
        """Like :meth:`reload` but returns ``(current set, error or None)``."""
        try:
            return self.reload(), None
        except ConfigError as exc:
            return self._current, exc

    def changed(self) -> bool:
        """Whether any policy file was added, removed or modified since the last load."""
        return self._stat() != self._fingerprint

    async def watch(self, on_reload: OnReload, *, interval_s: float = 1.0) -> None:
        """Poll the folder every ``interval_s`` seconds and reload (in a worker thread) on change.

        ``on_reload(new_set, None)`` follows a successful swap, ``on_reload(None, error)``
        a refused one (the old set keeps running). Runs until cancelled.
        """
        while True:
            await anyio.sleep(interval_s)
            if not self.changed():
                continue
            fingerprint = self._stat()
            # Loading may take a while (large folders, the Rego self-check child process):
            # keep it off the event loop. The swap itself is one assignment.
            new, error = await anyio.to_thread.run_sync(self.try_reload)
            if error is not None:
                self._fingerprint = fingerprint  # do not report the same broken state again
                await on_reload(None, error)
            else:
                await on_reload(new, None)

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = policy_files(self.path)
        except OSError:
            return ()
        out = []
        for f in files:
            try:
                st = os.stat(f)
            except OSError:
                continue
            out.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(out)
