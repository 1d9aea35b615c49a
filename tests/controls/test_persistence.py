"""Budget counters written behind to a real SQLite file, when that file misbehaves."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from mcp_guard.controls import Controls, open_embedded_state
from tests.controls.controls_support import at, call, config

pytestmark = pytest.mark.anyio

NOON = datetime(2026, 6, 15, 12, tzinfo=UTC)
DAILY = config(budgets=[{"id": "daily", "period": "day", "max_calls": 10}])


class SetOnError(logging.Handler):
    """Sets ``event`` when an error is logged."""

    def __init__(self, event: anyio.Event) -> None:
        super().__init__(logging.ERROR)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


def rename_table(db: Path, old: str, new: str) -> None:
    with closing(sqlite3.connect(db)) as other:
        other.execute(f"ALTER TABLE {old} RENAME TO {new}")
        other.commit()


async def test_a_failed_write_behind_flush_is_logged_and_retried_while_the_gateway_keeps_counting(
    tmp_path: Path,
) -> None:
    db = tmp_path / "controls.db"
    failed = anyio.Event()
    handler = SetOnError(failed)
    logger = logging.getLogger("mcp_guard.controls.sqlite_state")
    logger.addHandler(handler)
    try:
        with anyio.fail_after(10):
            async with open_embedded_state(db, flush_interval=0.001, wall=NOON.timestamp) as state:
                rename_table(db, "budget_usage", "moved_away")  # every write now fails
                c = Controls(DAILY, state)
                assert await c.check(call(), at(0.0, NOON)) is None
                await failed.wait()
                rename_table(db, "moved_away", "budget_usage")
                assert await c.check(call(), at(0.0, NOON)) is None
    finally:
        logger.removeHandler(handler)
    async with open_embedded_state(db, flush_interval=3600, wall=NOON.timestamp) as state:
        assert sum(u.calls for u in state.counters.values()) == 2
