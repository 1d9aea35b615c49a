"""Instructions the gateway executes per tool call, counted by valgrind (callgrind).

    .venv/bin/python benchmarks/call_instructions.py [--short 50] [--long 250] [--http]

The wall-clock benchmarks (``proxy_latency.py``) move by up to 60 % with the state of a
shared machine, the direct calls included; the work a call costs does not. This one
counts it: each target runs under ``valgrind --tool=callgrind`` twice, once answering
``--short`` and once ``--long`` sequential ``get_balance`` calls from a raw JSON-RPC
client, and the difference of the two totals divided by the difference in calls is the
instructions per call, start-up and shutdown cancelled out. The two runs of a target go
side by side. Targets:

- ``direct stdio``: the demo ``bank`` server (the MCP SDK's own server) over stdio;
- ``guard stdio>stdio``: ``mcp-guard serve --transport stdio`` in front of it (only the
  gateway runs under valgrind; the bank does not);
- ``guard http>stdio`` (``--http``): ``mcp-guard serve --transport http``, streamable HTTP.

The gateway runs the bundled example's governance (policies, inspection, risk, controls,
audit) with audit ``synchronous: NORMAL`` unless ``--config`` says otherwise. Timers fire
at other points under valgrind, where a call takes ~50 ms, so the figures are for
comparing builds (``--gateway-path``), not for converting to time. Counts repeat within
±0.5 % between runs. Needs valgrind (skips with a message without it); one run takes
5-10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
from _common import PYTHON, ROOT, demo_command, free_port  # benchmarks/ is on sys.path when run as a script

NORMAL_AUDIT = "local_principal: {user: bench, agent: call-instructions}\naudit: {synchronous: NORMAL}\n"
HANDSHAKE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "call-instructions", "version": "1"},
}
READY_TIMEOUT_S = 600.0
"""The gateway starts ~50x slower under valgrind."""


def callgrind(out: Path, command: list[str]) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no", *command]


def total_instructions(out: Path) -> int:
    found = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(found.group(1))


class StdioClient:
    """Newline-delimited JSON-RPC over a child's stdin/stdout, one request at a time."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._next_id = 0

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._write({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        self._write({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        assert self._process.stdout is not None
        while True:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError(f"{method}: the process closed its stdout")
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == self._next_id:
                if "result" not in message:
                    raise RuntimeError(f"{method} failed: {message}")
                return message

    def _write(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\n")
        self._process.stdin.flush()


def gateway_files(workdir: Path, config: str) -> list[str]:
    (workdir / "upstreams.yaml").write_text(
        f"upstreams:\n  bank:\n    command: {PYTHON}\n    args: [-m, mcp_guard.demo, bank]\n"
    )
    (workdir / "mcp-guard.yaml").write_text(config)
    return ["--upstreams", str(workdir / "upstreams.yaml"), "--config", str(workdir / "mcp-guard.yaml")]


def stdio_run(command: list[str], tool: str, calls: int, workdir: Path, env: dict[str, str]) -> int:
    out = workdir / "callgrind.out"
    with (workdir / "stderr.log").open("wb") as errlog:
        process = subprocess.Popen(
            callgrind(out, command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            cwd=workdir,
            env=env,
        )
        try:
            client = StdioClient(process)
            client.request("initialize", HANDSHAKE)
            client.notify("notifications/initialized")
            for _ in range(calls):
                client.request("tools/call", {"name": tool, "arguments": {"account": "ACC-1001"}})
        finally:
            assert process.stdin is not None
            process.stdin.close()
            process.wait()
    return total_instructions(out)


def http_run(command: list[str], tool: str, calls: int, workdir: Path, env: dict[str, str]) -> int:
    out = workdir / "callgrind.out"
    port = free_port()
    with (workdir / "stderr.log").open("wb") as errlog:
        process = subprocess.Popen(
            callgrind(out, [*command, "--port", str(port)]),
            stdin=subprocess.DEVNULL,
            stdout=errlog,
            stderr=errlog,
            cwd=workdir,
            env=env,
        )
        try:
            with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                wait_ready(client, process)
                http_calls(client, tool, calls)
        finally:
            process.terminate()  # uvicorn shuts down cleanly on SIGTERM; valgrind then writes its file
            process.wait()
    return total_instructions(out)


def wait_ready(client: httpx2.Client, process: subprocess.Popen[bytes]) -> None:
    """Until the server answers: the gateway's ``/healthz`` says ok (its upstream is up),
    or, for a server without one (the bank), any answer at all."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited before it was ready; see its stderr.log")
        try:
            health = client.get("/healthz")
            if health.status_code == 404 or health.json().get("status") == "ok":
                return
        except (httpx2.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {READY_TIMEOUT_S:.0f}s")


def http_calls(client: httpx2.Client, tool: str, calls: int) -> None:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}

    def post(message: dict[str, Any]) -> httpx2.Response:
        response = client.post("/mcp", content=json.dumps(message), headers=headers)
        response.raise_for_status()
        return response

    opened = post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": HANDSHAKE})
    headers |= {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    for i in range(calls):
        params = {"name": tool, "arguments": {"account": "ACC-1001"}}
        answer = post({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": params})
        if '"result"' not in answer.text:
            raise RuntimeError(f"tools/call failed: {answer.text[:300]}")


Run = Callable[[int, Path], int]


def per_call(run: Run, short: int, long: int) -> float:
    """Instructions per call: the two runs side by side, start-up cancelled out."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(
            pool.map(lambda n: run(n, Path(tempfile.mkdtemp(prefix="call-instructions-"))), (short, long))
        )
    return (counts[1] - counts[0]) / (long - short)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", type=int, default=50, help="calls in the shorter run")
    parser.add_argument("--long", type=int, default=250, help="calls in the longer run")
    parser.add_argument("--http", action="store_true", help="also count the streamable-HTTP gateway")
    parser.add_argument("--config", type=Path, help="settings file for the gateway (default: audit NORMAL)")
    parser.add_argument(
        "--gateway-path",
        type=Path,
        default=ROOT,
        help="checkout whose mcp_guard is counted (default: this one)",
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("call_instructions: valgrind is not installed; nothing measured", file=sys.stderr)
        sys.exit(0)
    if not 0 < args.short < args.long:
        parser.error("need 0 < --short < --long")
    config = args.config.read_text() if args.config else NORMAL_AUDIT
    env = dict(os.environ, PYTHONPATH=str(args.gateway_path.resolve()), PYTHONHASHSEED="0")
    gateway = [PYTHON, "-m", "mcp_guard", "serve"]

    def direct(calls: int, workdir: Path) -> int:
        return stdio_run(demo_command("bank"), "get_balance", calls, workdir, env)

    def guard_stdio(calls: int, workdir: Path) -> int:
        command = [*gateway, "--transport", "stdio", *gateway_files(workdir, config)]
        return stdio_run(command, "bank__get_balance", calls, workdir, env)

    def direct_http(calls: int, workdir: Path) -> int:
        command = demo_command("bank", "--transport", "streamable-http")
        return http_run(command, "get_balance", calls, workdir, env)

    def guard_http(calls: int, workdir: Path) -> int:
        command = [*gateway, "--transport", "http", *gateway_files(workdir, config)]
        return http_run(command, "bank__get_balance", calls, workdir, env)

    targets: list[tuple[str, Run, str]] = [
        ("direct stdio", direct, "direct stdio"),
        ("guard stdio>stdio", guard_stdio, "direct stdio"),
    ]
    if args.http:
        targets += [
            ("direct http", direct_http, "direct http"),
            ("guard http>stdio", guard_http, "direct http"),
        ]
    print(
        f"call_instructions: {args.short} and {args.long} sequential calls per target; "
        f"gateway from {args.gateway_path}"
    )
    print(f"Python {sys.version.split()[0]}; gateway settings: {args.config or 'audit NORMAL'}\n")
    print(f"{'target':<20} {'instructions/call':>18} {'vs baseline':>12}  baseline")
    print("-" * 66)
    counted: dict[str, float] = {}
    for label, run, baseline in targets:
        counted[label] = per_call(run, args.short, args.long)
        ratio = f"{counted[label] / counted[baseline]:.2f}x" if label != baseline else ""
        print(f"{label:<20} {counted[label]:>18,.0f} {ratio:>12}  {baseline if ratio else ''}", flush=True)


if __name__ == "__main__":
    main()
