"""A JSON-RPC peer that drives a real ``mcp-guard serve --transport stdio`` process line by line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import IO, Literal

import anyio
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from tests.harness import INITIALIZE, behaviour_upstream

LOCAL_SETTINGS = "local_principal: {user: tester}\n"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
}
"""The 2026-07-28 per-request ``_meta`` envelope (no handshake in that era)."""


class StdioPeer:
    """Speaks newline-delimited JSON-RPC to a gateway process and keeps every stdout line."""

    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdout is not None
        self.lines = TextReceiveStream(process.stdout)
        self.buffer = ""
        self.stdout_lines: list[str] = []

    async def send(self, message: dict[str, object]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((json.dumps(message) + "\n").encode())

    async def receive(self) -> dict[str, object]:
        while "\n" not in self.buffer:
            self.buffer += await self.lines.receive()
        line, self.buffer = self.buffer.split("\n", 1)
        self.stdout_lines.append(line)
        parsed: dict[str, object] = json.loads(line)
        return parsed

    async def request(self, msg_id: int, method: str, params: dict[str, object]) -> dict[str, object]:
        await self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        while True:
            message = await self.receive()
            if message.get("id") == msg_id:
                return message


def prepare_gateway(tmp_path: Path, settings: str = LOCAL_SETTINGS) -> list[str]:
    """Write the behaviour upstream and ``settings`` into ``tmp_path`` (the gateway's working
    folder); returns the ``mcp-guard serve`` command for them, without ``--transport``."""
    behaviour_upstream(tmp_path)  # writes upstreams.yaml
    (tmp_path / "mcp-guard.yaml").write_text(settings, encoding="utf-8")
    return [sys.executable, "-m", "mcp_guard", "serve", "--upstreams", str(tmp_path / "upstreams.yaml")]


async def start_gateway(
    tmp_path: Path,
    settings: str = LOCAL_SETTINGS,
    stderr: IO[bytes] | int = subprocess.DEVNULL,
    *,
    era: Literal["handshake", "envelope"] = "handshake",
) -> tuple[Process, StdioPeer]:
    """Start the gateway on the behaviour upstream in ``tmp_path`` (its working folder) and
    open the connection (see :func:`open_gateway`)."""
    command = prepare_gateway(tmp_path, settings)
    process, peer, tools = await open_gateway(command, tmp_path, stderr, era=era)
    assert "beh__echo" in tools
    return process, peer


async def open_gateway(
    serve: list[str],
    cwd: Path,
    stderr: IO[bytes] | int = subprocess.DEVNULL,
    *,
    era: Literal["handshake", "envelope"] = "handshake",
) -> tuple[Process, StdioPeer, set[str]]:
    """Run ``serve`` (an ``mcp-guard serve`` command) over stdio in ``cwd`` and open the
    connection: the ``initialize`` handshake, or (``era="envelope"``) a 2026-07-28
    ``tools/list`` carrying the per-request envelope. Returns the tool names it lists."""
    process = await anyio.open_process(
        [*serve, "--transport", "stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=cwd,
    )
    peer = StdioPeer(process)
    with anyio.fail_after(30):
        if era == "envelope":
            listed = await peer.request(2, "tools/list", {"_meta": ENVELOPE})
        else:
            init = await peer.request(1, "initialize", INITIALIZE)
            assert "result" in init
            await peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            listed = await peer.request(2, "tools/list", {})
    return process, peer, {t["name"] for t in listed["result"]["tools"]}  # type: ignore[index]
