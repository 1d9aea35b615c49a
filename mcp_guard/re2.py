"""google-re2 (linear-time regular expressions), imported from here only.

It must never share a process with regopy: both wheels carry copies of parts of the C++
standard library, and with google-re2 loaded, regopy's date builtins abort the process
(``free(): invalid pointer``) -- whichever order they load in, one of them breaks. Rego
therefore runs in a child process (:mod:`mcp_guard.policy.rego_engine`), and modules the
engine imports (the policy package) import this one only where a pattern is compiled.
"""

from __future__ import annotations

import re2  # type: ignore[import-untyped]

OPTIONS = re2.Options()
OPTIONS.log_errors = False
"""Compile options for patterns refused with an error of our own (not a line on stderr)."""

__all__ = ["OPTIONS", "re2"]
