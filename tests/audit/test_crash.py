"""Durability: every entry whose append returned survives SIGKILL of the writing process."""

from __future__ import annotations

import sqlite3
import sys

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from mcp_guard.audit import AuditConfig, verify

from .helpers import public_key

WRITER = """
import sys, anyio
from mcp_guard.audit import AuditConfig, SqliteAuditLog

async def main() -> None:
    config = AuditConfig.model_validate_json(sys.argv[1])
    async with SqliteAuditLog.open(config) as log:
        i = 0
        while True:
            i += 1
            receipt = await log.append("decision", {"i": i, "tool": "t", "decision": "ALLOW"})
            print(receipt.seq, flush=True)

anyio.run(main)
"""


@pytest.mark.anyio
@pytest.mark.parametrize("synchronous", ["FULL", "OVERLAPPED", "NORMAL"])
async def test_every_acknowledged_entry_survives_sigkill(config: AuditConfig, synchronous: str) -> None:
    config = config.model_copy(update={"synchronous": synchronous})
    printed: list[int] = []
    with anyio.fail_after(20):
        async with await anyio.open_process([sys.executable, "-c", WRITER, config.model_dump_json()]) as proc:
            assert proc.stdout is not None
            buffer = ""
            async for chunk in TextReceiveStream(proc.stdout):
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                printed += [int(line) for line in lines]
                if len(printed) >= 300:
                    proc.kill()  # SIGKILL: no clean close, no final checkpoint
                    break
            await proc.wait()
    assert printed == list(range(1, len(printed) + 1))
    with sqlite3.connect(config.path) as db:
        stored = {r[0] for r in db.execute("SELECT seq FROM entries")}
    assert set(printed) <= stored
    report = verify(config.path, public_key(config))
    assert report.ok, report.problem
