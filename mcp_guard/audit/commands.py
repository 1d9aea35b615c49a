"""``mcp-guard audit ...``: verify, export, tail, report, prune.

Exit status: 0 success (verify: intact), 1 the log is tampered (or a prune was
refused), 2 usage or file errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from mcp_guard.audit.export import entry_json, export_entries, follow_entries, tail_entries
from mcp_guard.audit.models import AuditError, RetentionError, format_time, parse_time
from mcp_guard.audit.prune import prune_log
from mcp_guard.audit.report import build_report, render_markdown
from mcp_guard.audit.schema import EntryFilter
from mcp_guard.audit.verify import verify
from mcp_guard.signing import SigningKeyError, load_public_key, load_signing_key

DEFAULT_DB = "var/audit.db"
_SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_KEY = "var/keys/audit-signing.pem"

OK, TAMPERED, USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``audit`` command and its subcommands to ``subparsers``."""
    audit = subparsers.add_parser("audit", help="verify, export, tail and report on the audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    p = _sub(sub, "verify", "recompute the hash chain and checkpoint signatures", _verify)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")

    p = _sub(sub, "export", "export entries as JSON Lines or CSV", _export)
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    for name in ("since", "until"):
        p.add_argument(
            f"--{name}",
            type=_time,
            metavar="TIME",
            help=f"RFC 3339 time or date ({name} is inclusive/exclusive)",
        )
    for name in ("user", "agent", "tool", "decision", "kind"):
        p.add_argument(f"--{name}")
    p.add_argument("--output", "-o", metavar="PATH", help="write here instead of standard output")

    p = _sub(sub, "tail", "print the last entries as JSON Lines", _tail)
    p.add_argument("-n", type=int, default=10, help="how many entries (default 10)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new entries")
    p.add_argument("--interval", type=float, default=0.5, help="poll interval for --follow (s)")

    p = _sub(sub, "report", "compliance report (Markdown or JSON)", _report)
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument("--retention-days", type=_days, default=183)
    p.add_argument("--output", "-o", metavar="PATH")

    p = _sub(sub, "prune", "delete entries older than a time, keeping the chain verifiable", _prune)
    p.add_argument("--before", type=_time, required=True, metavar="TIME", help="RFC 3339 time or date")
    p.add_argument("--retention-days", type=_days, default=183, help="minimum retention (default 183)")


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str, func: Command
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=text, description=text)
    p.add_argument("--db", type=Path, default=Path(DEFAULT_DB), help=f"audit database (default {DEFAULT_DB})")
    p.add_argument(
        "--public-key",
        "--key",
        dest="key",
        type=Path,
        default=Path(DEFAULT_KEY),
        help=f"public key PEM, or the private signing key (default {DEFAULT_KEY}); "
        "prune needs the private key",
    )
    p.set_defaults(func=_guarded(func))
    return p


def _guarded(func: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except RetentionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return TAMPERED
        except (AuditError, SigningKeyError, ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return USAGE

    return run


def _verify(args: argparse.Namespace) -> int:
    report = verify(args.db, load_public_key(args.key))
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(report.summary())
        for warning in report.warnings:
            print(f"warning: {warning}")
    return OK if report.ok else TAMPERED


def _export(args: argparse.Namespace) -> int:
    flt = EntryFilter(
        since=_time_text(args.since),
        until=_time_text(args.until),
        user=args.user,
        agent=args.agent,
        tool=args.tool,
        decision=args.decision,
        kind=args.kind,
    )
    with _output(args.output, db=args.db) as out:
        count = export_entries(args.db, out, args.format, flt)
    print(f"exported {count} entries", file=sys.stderr)
    return OK


def _tail(args: argparse.Namespace) -> int:
    entries = tail_entries(args.db, args.n)
    for entry in entries:
        print(entry_json(entry), flush=True)
    if args.follow:
        after = entries[-1].seq if entries else 0
        try:
            for entry in follow_entries(args.db, after, poll_s=args.interval):
                print(entry_json(entry), flush=True)
        except KeyboardInterrupt:
            return OK
    return OK


def _report(args: argparse.Namespace) -> int:
    rep = build_report(
        args.db, load_public_key(args.key), retention_days=args.retention_days, now=datetime.now(UTC)
    )
    with _output(args.output, db=args.db) as out:
        out.write(rep.model_dump_json(indent=2) + "\n" if args.format == "json" else render_markdown(rep))
    return OK if rep.integrity.ok else TAMPERED


def _prune(args: argparse.Namespace) -> int:
    key = load_signing_key(args.key)
    result = prune_log(args.db, key, args.before, retention_days=args.retention_days, now=datetime.now(UTC))
    if result.anchor_seq is None:
        print(f"nothing to prune: no signed checkpoint older than {result.before}")
    else:
        print(
            f"pruned {result.deleted} entries through seq {result.anchor_seq}; the log now starts at seq "
            f"{result.first_seq}, anchored by the signed checkpoint at seq {result.anchor_seq}"
        )
    return OK


def _days(text: str) -> int:
    """A ``--retention-days`` value: a whole number of days, 0 or more."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, not {text!r}") from None
    if days < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more days, not {days}")
    return days


def _time(text: str) -> datetime:
    """A time option: an RFC 3339 time or a date (naive = UTC); a clear error naming the
    option otherwise (``datetime``'s own message does not say which option is wrong)."""
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an RFC 3339 time or date, not {text!r}") from None


def _time_text(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


@contextmanager
def _output(path: str | None, *, db: Path) -> Iterator[TextIO]:
    """Standard output, or the file at ``path``, which appears only once everything is
    written: a command that fails leaves an existing file as it was.

    Raises:
        ValueError: ``path`` is the audit database ``db``, or another SQLite database.
    """
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    _refuse_to_overwrite_a_database(target, db)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with open(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _refuse_to_overwrite_a_database(target: Path, db: Path) -> None:
    """Raises: ValueError — ``target`` is ``db`` or starts like an SQLite database."""
    if not target.is_file():
        return
    if db.exists() and target.samefile(db):
        raise ValueError(f"refusing to write over the audit database {db}; choose another --output")
    with target.open("rb") as fh:
        if fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
            raise ValueError(f"refusing to overwrite {target}: it is an SQLite database")
