"""Helpers for the approvals tests: a hand-advanced clock, principals, contexts, a local HTTP server."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp

from mcp_guard.approvals import (
    ApprovalConfig,
    ApprovalContext,
    ApprovalService,
    ApprovalSpec,
    Approvers,
    call_digest,
)
from mcp_guard.audit.models import AuditReceipt, AuditUnavailableError
from mcp_guard.audit.protocol import FailureHandler, RecordBuilder
from mcp_guard.principal import Principal

ALICE = Principal(
    user="alice", agent="claude-desktop", roles=frozenset({"engineer"}), teams=frozenset({"payments"})
)
"""The requester."""
BOB = Principal(user="bob", roles=frozenset({"sre"}))
"""An approver (by role)."""
CAROL = Principal(user="carol", roles=frozenset({"engineer"}))
"""Neither requester nor approver."""
ADMIN = Principal(user="dana", roles=frozenset({"approvals-admin"}))
"""Sees everything, approves nothing."""

APPROVERS = Approvers(roles=("sre",), users=("erin",))


class FakeClock:
    """Wall time that moves only when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class RecordingAudit:
    """An AuditLog that keeps entries in memory."""

    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def append(self, kind: str, record: Mapping[str, Any]) -> AuditReceipt:
        self.entries.append((kind, dict(record)))
        n = len(self.entries)
        return AuditReceipt(id=f"e{n}", seq=n, hash="0" * 64)

    def append_behind(self, kind: str, build: RecordBuilder, on_failure: FailureHandler) -> None:
        self.entries.append((kind, dict(build())))

    async def durable(self, receipt: AuditReceipt) -> None:
        """Memory is as durable as this log gets."""

    def events(self, approval_id: str | None = None) -> list[str]:
        return [
            r["event"]
            for kind, r in self.entries
            if kind == "approval" and (approval_id is None or r["approval_id"] == approval_id)
        ]


class UnavailableAudit(RecordingAudit):
    """An audit log that refuses every entry after the first ``working`` ones (until ``working`` grows)."""

    def __init__(self, working: int) -> None:
        super().__init__()
        self.working = working

    async def append(self, kind: str, record: Mapping[str, Any]) -> AuditReceipt:
        if len(self.entries) >= self.working:
            raise AuditUnavailableError("disk full")
        return await super().append(kind, record)


def make_config(tmp_path: Path, **overrides: Any) -> ApprovalConfig:
    base: dict[str, Any] = {
        "path": tmp_path / "approvals.db",
        "signing_key_path": tmp_path / "keys" / "approvals-signing.pem",
        "public_url": "https://gw.example.test/admin/approvals",
        "poll_interval_s": 0.05,
        "progress_interval_s": 0.05,
    }
    base.update(overrides)
    return ApprovalConfig.model_validate(base)


def make_context(
    principal: Principal = ALICE,
    tool: str = "github__delete_repo",
    arguments: dict[str, Any] | None = None,
    **spec: Any,
) -> ApprovalContext:
    args = {"owner": "acme", "repo": "payments-api"} if arguments is None else arguments
    spec.setdefault("approvers", APPROVERS)
    return ApprovalContext(
        principal=principal,
        session_id="s-1",
        tool=tool,
        upstream="github",
        arguments=args,
        call_digest=call_digest(principal, tool, args),
        findings=[{"type": "secret", "severity": "high", "path": "token"}],
        risk=72.0,
        risk_breakdown={"destructive": 30},
        rules=("destructive-needs-approval",),
        reason="deleting a repository needs an approval",
        history=[{"tool": "github__list_repos", "decision": "ALLOW"}],
        spec=ApprovalSpec(**spec),
    )


class CountingBody:
    """A request body streamed in chunks, counting how much of it the server pulled."""

    def __init__(self, total: int, chunk: int = 4096) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"x" * self.chunk


class _Server(uvicorn.Server):
    """uvicorn with a "listening" event instead of a polled flag."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port); yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(5):
            await server.ready.wait()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


def closed_port() -> int:
    """A local port nothing listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another writer (the CLI, a backup, a ``sqlite3`` shell) holding the database's write lock."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def cancel_while_holding(approvals: ApprovalService, request_id: str) -> None:
    """Hold a call on ``request_id`` until it sends progress, then cancel it (the client went away)."""
    ticked = anyio.Event()

    async def on_tick(waited: float) -> None:
        ticked.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(approvals.wait, request_id, 300, on_tick)
            await ticked.wait()
            tg.cancel_scope.cancel()
