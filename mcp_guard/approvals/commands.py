"""``mcp-guard approvals ...``: list, show, approve, reject, verify — directly on the SQLite file.

Whoever can run these commands can read the approvals database and the signing key,
so the CLI is for trusted operators: ``--as-user``/``--roles``/``--teams`` declare the
operator's identity and are not checked against any token. Approvals and rejections
still go through the same approver rules, are signed with the approvals key, and are
written to the audit log (``--audit-db``; ``--no-audit`` to skip). A gateway waiting on
a held call sees a CLI decision within its poll interval.

Exit status: 0 success (verify: valid), 1 refused (or verify: invalid), 2 usage or file errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from mcp_guard.approvals.decide import is_overdue, record_decision
from mcp_guard.approvals.decisions import verify_decision
from mcp_guard.approvals.errors import ApprovalError
from mcp_guard.approvals.models import ApprovalRequest, ApprovalState, Approvers
from mcp_guard.approvals.store import ApprovalStore, ApprovalStoreError
from mcp_guard.audit import AuditConfig, AuditError, SqliteAuditLog
from mcp_guard.audit.protocol import AuditLog
from mcp_guard.principal import Principal
from mcp_guard.signing import SigningKeyError, load_public_key, load_signing_key

DEFAULT_DB = "var/approvals.db"
DEFAULT_KEY = "var/keys/approvals-signing.pem"
DEFAULT_AUDIT_DB = "var/audit.db"
DEFAULT_AUDIT_KEY = "var/keys/audit-signing.pem"

OK, REFUSED, USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``approvals`` command and its subcommands to ``subparsers``."""
    parser = subparsers.add_parser("approvals", help="list, decide and verify human approvals")
    sub = parser.add_subparsers(dest="approvals_command", required=True, metavar="COMMAND")

    p = _sub(sub, "list", "list approval requests, newest first", _list)
    p.add_argument("--state", choices=[s.value for s in ApprovalState])
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _sub(sub, "show", "print one request as JSON", _show)
    p.add_argument("id")

    for name, text in (("approve", "approve a pending request"), ("reject", "reject a pending request")):
        p = _sub(sub, name, text, _approve if name == "approve" else _reject)
        p.add_argument("id")
        p.add_argument("--as-user", required=True, metavar="USER", help="the operator's user name")
        p.add_argument("--agent", help="the operator's agent name, if any")
        p.add_argument("--roles", default="", help="comma-separated roles of the operator")
        p.add_argument("--teams", default="", help="comma-separated teams of the operator")
        p.add_argument("--reason", required=name == "reject", default="", help="why (required to reject)")
        p.add_argument(
            "--default-approver-roles",
            default="",
            help="comma-separated roles allowed to decide requests whose rule names no approvers "
            "(mirror approvals.default_approvers.roles of the gateway configuration)",
        )
        p.add_argument("--audit-db", type=Path, default=Path(DEFAULT_AUDIT_DB), help="audit log database")
        p.add_argument("--audit-key", type=Path, default=Path(DEFAULT_AUDIT_KEY), help="audit signing key")
        p.add_argument("--no-audit", action="store_true", help="do not write the decision to the audit log")

    p = _sub(sub, "verify", "verify the signature of a request's decision", _verify)
    p.add_argument("id")


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str, func: Command
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=text, description=text)
    p.add_argument(
        "--db", type=Path, default=Path(DEFAULT_DB), help=f"approvals database (default {DEFAULT_DB})"
    )
    p.add_argument(
        "--key",
        type=Path,
        default=Path(DEFAULT_KEY),
        help=f"approvals signing key (default {DEFAULT_KEY}); verify also accepts a public key PEM",
    )
    p.set_defaults(func=func)
    return p


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return anyio.run(main)
    except (ApprovalStoreError, SigningKeyError, AuditError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE


def _split(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def _effective_state(request: ApprovalRequest, now: datetime) -> str:
    return "expired (overdue)" if is_overdue(request, now) else request.state.value


def _list(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with ApprovalStore.open(args.db, create=False) as store:
            found = await store.list_requests(None if args.state is None else ApprovalState(args.state))
        now = datetime.now(UTC)
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in found], indent=2))
            return OK
        for r in found:
            who = r.principal.user + (f"/{r.principal.agent}" if r.principal.agent else "")
            print(
                f"{r.id}  {_effective_state(r, now):<18} {r.spec.mode:<5}  "
                f"{r.created_at:%Y-%m-%d %H:%M:%S}  {who}  {r.tool}"
            )
        return OK

    return _run(main)


def _show(args: argparse.Namespace) -> int:
    async def main() -> int:
        async with ApprovalStore.open(args.db, create=False) as store:
            found = await store.get(args.id)
            deliveries = await store.deliveries(args.id)
        if found is None:
            print(f"error: approval request '{args.id}' does not exist", file=sys.stderr)
            return REFUSED
        view = found.model_dump(mode="json")
        view["effective_state"] = _effective_state(found, datetime.now(UTC))
        view["deliveries"] = [d.model_dump(mode="json") for d in deliveries]
        print(json.dumps(view, indent=2))
        return OK

    return _run(main)


@asynccontextmanager
async def _audit_log(args: argparse.Namespace) -> AsyncIterator[AuditLog | None]:
    if args.no_audit:
        yield None
        return
    async with SqliteAuditLog.open(AuditConfig(path=args.audit_db, signing_key_path=args.audit_key)) as log:
        yield log


def _decide(args: argparse.Namespace, approve: bool) -> int:
    operator = Principal(
        user=args.as_user, agent=args.agent, roles=_split(args.roles), teams=_split(args.teams), issuer="cli"
    )

    async def main() -> int:
        key = load_signing_key(args.key)
        async with ApprovalStore.open(args.db, create=False) as store, _audit_log(args) as audit:
            try:
                decided = await record_decision(
                    store,
                    key,
                    audit,
                    request_id=args.id,
                    approver=operator,
                    approve=approve,
                    reason=args.reason,
                    now=datetime.now(UTC),
                    via="cli",
                    default_approvers=Approvers(roles=tuple(_split(args.default_approver_roles))),
                )
            except ApprovalError as exc:
                print(f"refused: {exc}", file=sys.stderr)
                return REFUSED
        print(f"{decided.id} {decided.state.value} by {operator.user}")
        return OK

    return _run(main)


def _approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def _reject(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def _verify(args: argparse.Namespace) -> int:
    async def main() -> int:
        public = load_public_key(args.key)
        async with ApprovalStore.open(args.db, create=False) as store:
            found = await store.get(args.id)
        if found is None:
            print(f"error: approval request '{args.id}' does not exist", file=sys.stderr)
            return USAGE
        if found.decision is None:
            print(f"invalid: approval request '{args.id}' has no decision ({found.state.value})")
            return REFUSED
        if not verify_decision(found, public):
            print(f"invalid: the decision on '{args.id}' does not verify with this key")
            return REFUSED
        d = found.decision
        verdict = "approve" if d.approve else "reject"
        when = d.decided_at.isoformat()
        print(f"valid: {verdict} by {d.approver_user} at {when} (key {d.key_id}): {d.reason}")
        return OK

    return _run(main)
