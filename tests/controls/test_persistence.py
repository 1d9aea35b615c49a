"""Budget counters written behind to a real SQLite file, when that file misbehaves."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from mcp_guard.controls import Controls, open_embedded_state
from mcp_guard.decision import Decision
from tests.controls.controls_support import at, call, config
from tests.harness import rename_table

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


@contextmanager
def errors_logged() -> Iterator[anyio.Event]:
    """An event set when the SQLite control state logs an error, while the block runs."""
    failed = anyio.Event()
    handler = SetOnError(failed)
    logger = logging.getLogger("mcp_guard.controls.sqlite_state")
    logger.addHandler(handler)
    try:
        yield failed
    finally:
        logger.removeHandler(handler)


async def test_a_failed_write_behind_flush_is_logged_and_retried_while_the_gateway_keeps_counting(
    tmp_path: Path,
) -> None:
    db = tmp_path / "controls.db"
    with errors_logged() as failed:
        with anyio.fail_after(10):
            async with open_embedded_state(db, flush_interval=0.001, wall=NOON.timestamp) as state:
                rename_table(db, "budget_usage", "moved_away")  # every write now fails
                c = Controls(DAILY, state)
                assert await c.check(call(), at(0.0, NOON)) is None
                await failed.wait()
                rename_table(db, "moved_away", "budget_usage")
                assert await c.check(call(), at(0.0, NOON)) is None
    async with open_embedded_state(db, flush_interval=3600, wall=NOON.timestamp) as state:
        assert sum(u.calls for u in state.counters.values()) == 2


LIMITED_AND_DAILY = config(
    limits=[{"id": "per-minute", "rate": "1/minute"}],
    budgets=[{"id": "daily", "period": "day", "max_calls": 10}],
)


async def test_a_call_whose_write_through_charge_cannot_be_written_is_refused_and_holds_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "controls.db"
    async with open_embedded_state(db, flush_interval=0, wall=NOON.timestamp) as state:
        c = Controls(LIMITED_AND_DAILY, state)
        rename_table(db, "budget_usage", "moved_away")

        refused = await c.admit(call(), at(0.0, NOON))

        assert refused.verdict is not None and refused.verdict.decision is Decision.BLOCK
        assert refused.verdict.rules == ("daily",)
        assert refused.verdict.reason.startswith(
            "Budget 'daily' could not record this call's charge "
            "(writing the budget counters to SQLite failed:"
        )
        assert refused.verdict.reason.endswith("); the call was not forwarded.")
        assert refused.taken == [] and [u.calls for u in state.counters.values()] == [0]
        rename_table(db, "moved_away", "budget_usage")
        assert (await c.admit(call(), at(0.0, NOON))).verdict is None  # its rate-limit token came back
    async with open_embedded_state(db, flush_interval=3600, wall=NOON.timestamp) as state:
        assert [u.calls for u in state.counters.values()] == [1]


async def test_a_write_through_give_back_that_cannot_be_written_is_kept_and_written_later(
    tmp_path: Path,
) -> None:
    db = tmp_path / "controls.db"
    with errors_logged() as failed:
        async with open_embedded_state(db, flush_interval=0, wall=NOON.timestamp) as state:
            c = Controls(DAILY, state)
            admitted = await c.admit(call(), at(0.0, NOON))
            rename_table(db, "budget_usage", "moved_away")

            await c.withdraw(admitted)  # the call was not forwarded after all

            assert failed.is_set() and [u.calls for u in state.counters.values()] == [0]
            rename_table(db, "moved_away", "budget_usage")
    async with open_embedded_state(db, flush_interval=3600, wall=NOON.timestamp) as state:
        assert [u.calls for u in state.counters.values()] == [0]


async def test_a_call_cancelled_while_its_charge_is_written_through_holds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "controls.db"
    async with open_embedded_state(db, flush_interval=0, wall=NOON.timestamp) as state:
        c = Controls(LIMITED_AND_DAILY, state)
        with closing(sqlite3.connect(db)) as other:
            other.execute("BEGIN IMMEDIATE")  # holds the write lock: the flush waits for it
            giving_up = anyio.CancelScope()

            async def admit() -> None:
                with giving_up:
                    await c.admit(call(), at(0.0, NOON))

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(admit)
                    await anyio.wait_all_tasks_blocked()
                    giving_up.cancel()
                    await anyio.wait_all_tasks_blocked()
                    other.rollback()

        assert [u.calls for u in state.counters.values()] == [0]
        assert (await c.admit(call(), at(0.0, NOON))).verdict is None  # its rate-limit token came back
