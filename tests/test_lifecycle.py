"""The gateway as a real process: a clean stdout, and no child outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import anyio
import pytest

from tests.harness import INITIALIZE_REQUEST, alive
from tests.stdio_peer import LOCAL_SETTINGS, open_gateway, prepare_gateway, start_gateway

pytestmark = pytest.mark.anyio


def children_of(pid: int) -> set[int]:
    """All descendants of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_gateway_and_every_upstream_process(tmp_path: Path, signum: int) -> None:
    process, _ = await start_gateway(tmp_path)
    children = children_of(process.pid)
    assert children, "the upstream subprocess should be running"
    process.send_signal(signum)
    with anyio.fail_after(20):
        await process.wait()
    assert not [pid for pid in children if alive(pid)]


async def test_the_client_closing_stdin_stops_the_gateway_and_its_upstreams(tmp_path: Path) -> None:
    process, _ = await start_gateway(tmp_path)
    children = children_of(process.pid)
    assert process.stdin is not None
    await process.stdin.aclose()
    with anyio.fail_after(20):
        await process.wait()
    assert process.returncode == 0
    assert not [pid for pid in children if alive(pid)]


@pytest.mark.parametrize(
    "request_line",
    [
        b'{"jsonrpc": "2.0", "id": 3, "method": "tools/list"}',  # answered by the SDK
        b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "beh__echo", '
        b'"arguments": {"text": "x"}}}',  # answered by the stdio lane
    ],
)
def test_the_client_closing_stdout_ends_the_session_without_a_traceback(
    tmp_path: Path, request_line: bytes
) -> None:
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*prepare_gateway(tmp_path), "--transport", "stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=tmp_path,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write((json.dumps(INITIALIZE_REQUEST) + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == INITIALIZE_REQUEST["id"]
        children = children_of(process.pid)
        process.stdout.close()  # the client stops reading ...
        process.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        process.stdin.write(request_line + b"\n")  # ... and asks
        process.stdin.flush()
        try:
            assert process.wait(timeout=20) == 0
        finally:
            process.kill()
            process.stdin.close()
    assert "the client closed stdout; shutting down" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert not [pid for pid in children if alive(pid)]


STUBBORN_UPSTREAM = """
import os, signal, subprocess, sys, time
from mcp_guard.demo.servers import SERVERS

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
helper = subprocess.Popen([sys.executable, "-c", STUBBORN])  # as stubborn, in the same process group
with open(os.environ["PIDS_FILE"], "w") as f:
    f.write(f"{os.getpid()} {helper.pid}")
SERVERS["bank"]().run("stdio")  # returns when stdin ends...
time.sleep(600)  # ...after which this upstream refuses to go
"""


async def wait_for_exit(pid: int) -> None:
    """Wait (no polling) until process ``pid`` has terminated."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await anyio.wait_readable(fd)
    finally:
        os.close(fd)


async def test_upstreams_ignoring_eof_and_sigterm_still_die_with_a_gateway_killed_by_sigkill(
    tmp_path: Path,
) -> None:
    (tmp_path / "stubborn.py").write_text(STUBBORN_UPSTREAM, encoding="utf-8")
    (tmp_path / "upstreams.yaml").write_text(
        f"upstreams:\n  bank:\n    command: {json.dumps(sys.executable)}\n"
        f"    args: [{json.dumps(str(tmp_path / 'stubborn.py'))}]\n"
        f"    env: {{PIDS_FILE: {json.dumps(str(tmp_path / 'pids'))}}}\n",
        encoding="utf-8",
    )
    (tmp_path / "mcp-guard.yaml").write_text(LOCAL_SETTINGS, encoding="utf-8")
    serve = [sys.executable, "-m", "mcp_guard", "serve", "--upstreams", "upstreams.yaml"]
    process, _, tools = await open_gateway(serve, tmp_path)
    assert "bank__get_balance" in tools
    upstream, helper = map(int, (tmp_path / "pids").read_text().split())

    process.kill()  # SIGKILL: the gateway gets no chance to stop anything
    await process.wait()
    try:
        with anyio.fail_after(20):
            await wait_for_exit(upstream)
            await wait_for_exit(helper)
    finally:  # should this fail, leave nothing running for 600 s
        with suppress(ProcessLookupError):
            os.killpg(upstream, signal.SIGKILL)  # the upstream leads its own process group
    assert not alive(upstream) and not alive(helper)


async def test_stdout_carries_nothing_but_json_rpc(tmp_path: Path) -> None:
    process, peer = await start_gateway(tmp_path)
    with anyio.fail_after(20):
        await peer.request(3, "tools/call", {"name": "beh__echo", "arguments": {"text": "x"}})
        await peer.request(4, "tools/call", {"name": "beh__nope", "arguments": {}})
    assert process.stdin is not None
    await process.stdin.aclose()
    with anyio.fail_after(20):
        rest = b""
        assert process.stdout is not None
        async for chunk in process.stdout:
            rest += chunk
        await process.wait()
    lines = peer.stdout_lines + [line for line in (peer.buffer + rest.decode()).splitlines() if line]
    assert len(lines) >= 4
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in lines)


def test_a_configuration_error_names_file_line_and_key_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "upstreams.yaml"
    bad.write_text("upstreams:\n  bank:\n    command: x\n    colour: blue\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "mcp_guard", "serve", "--upstreams", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 2
    assert f"{bad}:4: upstreams.bank.colour: unknown key" in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize(
    ("stdin", "stdout"), [("/dev/null", "a pipe"), ("/dev/null", "/dev/null"), ("a client", "/dev/null")]
)
def test_stdio_from_or_to_dev_null_serves_until_stdin_ends_and_exits_0(
    tmp_path: Path, stdin: str, stdout: str
) -> None:
    """As under a service manager that gives the gateway no stdin (epoll refuses /dev/null)."""
    client = (json.dumps(INITIALIZE_REQUEST) + "\n").encode()
    out = subprocess.run(
        [*prepare_gateway(tmp_path), "--transport", "stdio"],
        input=client if stdin == "a client" else None,
        stdin=None if stdin == "a client" else subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout == "a pipe" else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert b"Traceback" not in out.stderr
    assert not out.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_the_http_gateway_stops_its_upstreams_on_a_signal(tmp_path: Path, signum: int) -> None:
    import httpx2

    from tests.harness import free_socket

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    process = await anyio.open_process(
        [*prepare_gateway(tmp_path), "--transport", "http", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(30):
            while True:  # poll readiness: the server gives no other signal that it is listening
                try:
                    health = (await http.get(f"http://127.0.0.1:{port}/healthz")).json()
                except httpx2.TransportError:
                    await anyio.lowlevel.checkpoint()
                    continue
                if health["status"] == "ok":
                    break
    children = children_of(process.pid)
    assert children
    process.send_signal(signum)
    with anyio.fail_after(20):
        await process.wait()
    assert not [pid for pid in children if alive(pid)]
