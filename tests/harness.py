"""Test harness: real gateways, real upstream processes, real clients."""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import anyio
import uvicorn
from mcp import ClientSession
from mcp.client.session import MessageHandlerFnT
from mcp.shared.memory import create_client_server_memory_streams
from starlette.types import ASGIApp

from mcp_guard.config.settings import GatewaySettings
from mcp_guard.gateway import Gateway
from mcp_guard.principal import LOCAL_PRINCIPAL, Principal
from mcp_guard.server import PrincipalResolver, build_server
from mcp_guard.upstreams.config import UpstreamsFile, load_upstreams
from mcp_guard.upstreams.supervisor import Backoff, Status

ROOT = Path(__file__).resolve().parent.parent
BEHAVIOUR = str(ROOT / "tests" / "servers" / "behaviour.py")
FAST_BACKOFF = Backoff(base_s=0.05, cap_s=0.2)
INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "test", "version": "1"},
}
"""``initialize`` params of a handshake-era test client."""
INITIALIZE_REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
MCP_POST_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
"""What a streamable-HTTP client sends with every POST."""


def write_upstreams(tmp_path: Path, text: str, name: str = "upstreams.yaml") -> UpstreamsFile:
    path = tmp_path / name
    path.write_text(
        text.replace("{python}", sys.executable)
        .replace("{behaviour}", BEHAVIOUR)
        .replace("{tmp}", str(tmp_path))
        .replace("{root}", str(ROOT)),
        encoding="utf-8",
    )
    return load_upstreams(path)


def behaviour_upstream(tmp_path: Path, name: str = "beh", **extra: str) -> UpstreamsFile:
    """``tests/servers/behaviour.py`` (progress, hangs, list changes, ...) over stdio as ``name``."""
    return _script_upstream(tmp_path, name, "{behaviour}", 'env: {MARKER_DIR: "{tmp}"}', extra)


def demo_upstreams_yaml(*names: str) -> str:
    """An ``upstreams.yaml`` text (for :func:`write_upstreams`) with the named bundled demo servers."""
    entries = "".join(
        f'  {name}:\n    command: "{{python}}"\n    args: ["-m", "mcp_guard.demo", "{name}"]\n'
        for name in names
    )
    return f"upstreams:\n{entries}"


def upstream_keys(extra: dict[str, str]) -> str:
    """More keys of an upstream entry, as YAML lines."""
    return "".join(f"    {k}: {v}\n" for k, v in extra.items())


def hostile_upstream(tmp_path: Path, name: str = "bad", **extra: str) -> UpstreamsFile:
    """``tests/servers/hostile.py`` (broken schemas, garbage results, endless messages) as ``name``."""
    return _script_upstream(tmp_path, name, "{root}/tests/servers/hostile.py", "", extra)


def _script_upstream(
    tmp_path: Path, name: str, script: str, keys: str, extra: dict[str, str]
) -> UpstreamsFile:
    """A Python test server run over stdio as upstream ``name`` (``keys``: a YAML line, or empty)."""
    entry = f'  {name}:\n    command: "{{python}}"\n    args: ["{script}"]\n'
    own = f"    {keys}\n" if keys else ""
    return write_upstreams(tmp_path, f"upstreams:\n{entry}{own}{upstream_keys(extra)}")


@contextmanager
def server_process(command: Callable[[int], list[str]], **popen: Any) -> Iterator[int]:
    """A server process listening on a free 127.0.0.1 port (``command(port)``); yields the port."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(command(port), **popen)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@asynccontextmanager
async def gateway_client(
    upstreams: UpstreamsFile,
    settings: GatewaySettings | None = None,
    *,
    principal: Principal = LOCAL_PRINCIPAL,
    resolve_principal: PrincipalResolver | None = None,
    message_handler: MessageHandlerFnT | None = None,
    **gateway_kwargs: Any,
) -> AsyncIterator[tuple[Gateway, ClientSession]]:
    """An in-process gateway with real upstreams, and a client connected to it in memory.

    Every request acts as ``principal``, or as whatever ``resolve_principal`` says."""
    gateway = Gateway(upstreams, with_private_state(settings), backoff=FAST_BACKOFF, **gateway_kwargs)
    server = build_server(gateway, resolve_principal or (lambda ctx: principal))
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        async with create_client_server_memory_streams() as (client_streams, server_streams):
            tg.start_soon(
                server.run, server_streams[0], server_streams[1], server.create_initialization_options()
            )
            async with ClientSession(*client_streams, message_handler=message_handler) as session:
                await session.initialize()
                yield gateway, session
        tg.cancel_scope.cancel()


def with_private_state(settings: GatewaySettings | None) -> GatewaySettings:
    """``settings`` with its state (audit log, keys, databases) in a fresh temporary folder."""
    settings = settings or GatewaySettings()
    if settings.state_dir != GatewaySettings().state_dir:
        return settings
    return settings.model_copy(update={"state_dir": Path(tempfile.mkdtemp(prefix="mcp-guard-test-"))})


async def wait_for_status(gateway: Gateway, upstream: str, status: Status, timeout_s: float = 20) -> None:
    target = gateway.upstreams[upstream]
    with anyio.fail_after(timeout_s):
        while target.status is not status:
            await target.changed.wait()


def alive(pid: int) -> bool:
    """Process ``pid`` exists and is not a zombie (Linux /proc)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def free_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 (connections queue until the server accepts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@asynccontextmanager
async def serve_http(app: ASGIApp | Callable[..., Any], tls_pem: Path | None = None) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 (over TLS with ``tls_pem``, a key and its
    certificate chain); yields the base URL. Lifespan runs before yielding."""
    sock = free_socket()
    port = sock.getsockname()[1]
    certfile = None if tls_pem is None else str(tls_pem)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ssl_certfile=certfile)
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(30):
            while not server.started:  # uvicorn offers no event; yield to the loop until startup completes
                await anyio.lowlevel.checkpoint()
        yield f"{'http' if tls_pem is None else 'https'}://127.0.0.1:{port}"
        server.should_exit = True
    sock.close()


class LoggedErrors(logging.Handler):
    """The errors one logger logs (on the event loop's thread), as they come."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._more = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._more.set()

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    async def wait_for(self, count: int = 1) -> None:
        """Return once ``count`` errors have been logged."""
        while len(self.records) < count:
            self._more = anyio.Event()
            await self._more.wait()


@contextmanager
def logged_errors(logger: str) -> Iterator[LoggedErrors]:
    """The errors ``logger`` logs while the block runs."""
    handler = LoggedErrors()
    target = logging.getLogger(logger)
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)


class FailingCommitOnce:
    """A store's SQLite connection, except that its next ``COMMIT`` fails as on a full disk and
    leaves the transaction open, as SQLite may. A fake: a real full disk fails the writes first."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            return self._fail()
        return self.conn.execute(sql, *args)

    async def _fail(self) -> None:
        raise sqlite3.OperationalError("database or disk is full")


def rename_table(db: Path, old: str, new: str) -> None:
    """Rename a table of a SQLite file from another connection (every write to ``old`` then fails)."""
    with closing(sqlite3.connect(db)) as other:
        other.execute(f"ALTER TABLE {old} RENAME TO {new}")
        other.commit()
