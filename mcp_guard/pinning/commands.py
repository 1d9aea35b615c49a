"""``mcp-guard tools ...``: list pinned and quarantined tools, diff, accept, reject.

Exit status: 0 success, 1 refused (nothing pending, poisoned without ``--force``, the
pending definition changed since ``--fingerprint``), 2 the database cannot be used.
A running gateway sees a decision after its next ``PinStore.refresh()``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio

from mcp_guard.audit.models import format_time
from mcp_guard.pinning.config import DEFAULT_PATH, PinningConfig
from mcp_guard.pinning.errors import NothingPendingError, PinStoreError, PoisonedToolError, StalePendingError
from mcp_guard.pinning.models import ToolRecord, ToolState
from mcp_guard.pinning.store import PinStore

OK, REFUSED, USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace], int]
T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tools`` command and its subcommands to ``subparsers``."""
    tools = subparsers.add_parser("tools", help="pinned tool definitions: list, diff, accept, reject")
    sub = tools.add_subparsers(dest="tools_command", required=True, metavar="COMMAND")

    p = _sub(sub, "list", "pinned, quarantined and rejected tools, with reasons", _list)
    p.add_argument("--upstream", help="only this upstream")
    p.add_argument("--json", action="store_true", help="one JSON object per tool")

    p = _sub(sub, "diff", "the pending definition against the pinned one", _diff)
    _tool_args(p)

    p = _sub(sub, "accept", "pin the pending definition (the gateway exposes it again)", _accept)
    _tool_args(p)
    _user_arg(p)
    p.add_argument("--force", action="store_true", help="accept despite poisoning findings")
    p.add_argument(
        "--fingerprint",
        type=_fingerprint_prefix,
        metavar="PREFIX",
        help="refuse unless the pending fingerprint starts with PREFIX",
    )

    p = _sub(sub, "reject", "keep the pending definition hidden and stop listing it as pending", _reject)
    _tool_args(p)
    _user_arg(p)


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str, func: Command
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=text, description=text)
    p.add_argument("--db", type=Path, default=DEFAULT_PATH, help=f"pin database (default {DEFAULT_PATH})")
    p.set_defaults(func=_guarded(func))
    return p


def _tool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("upstream", metavar="UPSTREAM", help="the upstream's name (as in upstreams.yaml)")
    p.add_argument("tool", metavar="TOOL", help="the tool's original name (without the upstream prefix)")


def _user_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-user", dest="as_user", metavar="NAME", help="who decides (default: the login name)")


def _guarded(func: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (NothingPendingError, PoisonedToolError, StalePendingError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return REFUSED
        except PinStoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return USAGE

    return run


def _with_store(args: argparse.Namespace, action: Callable[[PinStore], Awaitable[T]]) -> T:
    async def main() -> T:
        async with PinStore.open(PinningConfig(path=args.db), create=False) as store:
            return await action(store)

    return anyio.run(main)


def _list(args: argparse.Namespace) -> int:
    records = _with_store(args, lambda s: s.records(args.upstream))
    if args.json:
        for rec in records:
            print(json.dumps(_record_json(rec), sort_keys=True))
        return OK
    if not records:
        print(f"no tools in {args.db}")
        return OK
    rows = [("STATE", "TOOL", "REASON", "FINGERPRINT", "SINCE", "BY")] + [_row(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    waiting = sum(1 for r in records if r.state is ToolState.QUARANTINED)
    if waiting:
        print(f"\n{waiting} tool(s) quarantined: review with 'mcp-guard tools diff UPSTREAM TOOL'")
    return OK


def _diff(args: argparse.Namespace) -> int:
    sys.stdout.write(_with_store(args, lambda s: s.diff(args.upstream, args.tool)))
    return OK


def _accept(args: argparse.Namespace) -> int:
    by = args.as_user or _login()
    pin = _with_store(
        args,
        lambda s: s.accept(args.upstream, args.tool, by=by, force=args.force, expected=args.fingerprint),
    )
    if pin.forced:
        print(
            f"warning: accepted {args.upstream}/{args.tool} with --force despite poisoning findings",
            file=sys.stderr,
        )
    print(
        f"accepted {args.upstream}/{args.tool} ({pin.fingerprint[:12]}) as {by}; "
        "a running gateway exposes it after its next pin refresh"
    )
    return OK


def _reject(args: argparse.Namespace) -> int:
    by = args.as_user or _login()
    change = _with_store(args, lambda s: s.reject(args.upstream, args.tool, by=by))
    print(f"rejected {args.upstream}/{args.tool} ({change.fingerprint[:12]}) as {by}; it stays hidden")
    return OK


def _row(rec: ToolRecord) -> tuple[str, str, str, str, str, str]:
    pin, pending = rec.pin, rec.pending
    name = f"{rec.upstream}/{rec.name}"
    if pending is None:
        assert pin is not None
        forced = " (forced)" if pin.forced else ""
        return ("pinned", name, "-", pin.fingerprint[:12], _short(pin.pinned_at), pin.pinned_by + forced)
    old = pin.fingerprint[:12] if pin is not None else "(none)"
    by = pending.decided_by or "-"
    since = _short(pending.first_seen)
    return (rec.state.value, name, pending.reason.value, f"{old} -> {pending.fingerprint[:12]}", since, by)


def _record_json(rec: ToolRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"upstream": rec.upstream, "tool": rec.name, "state": rec.state.value}
    if rec.pin is not None:
        out["pinned"] = {
            "fingerprint": rec.pin.fingerprint,
            "at": format_time(rec.pin.pinned_at),
            "by": rec.pin.pinned_by,
            "forced": rec.pin.forced,
        }
    if rec.pending is not None:
        out["pending"] = {
            "fingerprint": rec.pending.fingerprint,
            "reason": rec.pending.reason.value,
            "first_seen": format_time(rec.pending.first_seen),
            "findings": [f.model_dump(mode="json") for f in rec.pending.findings],
        }
    return out


def _fingerprint_prefix(text: str) -> str:
    """A ``--fingerprint`` value: one or more hexadecimal digits. An empty prefix would match
    every definition, so ``--fingerprint "$FP"`` with ``FP`` unset would skip the very check
    it asks for."""
    prefix = text.strip().lower()
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise argparse.ArgumentTypeError(
            f"expected hexadecimal digits of the fingerprint (from 'mcp-guard tools list'), not {text!r}"
        )
    return prefix


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return "operator"


def _short(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
