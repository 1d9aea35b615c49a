"""Opening the pin database and its configuration."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from mcp_guard.pinning import PinningConfig, PinStoreError
from tests.harness import FailingCommitOnce
from tests.pinning.tools import opened, weather

pytestmark = pytest.mark.anyio


def test_the_config_rejects_unknown_keys_and_defaults_to_trust_on_first_use() -> None:
    with pytest.raises(pydantic.ValidationError, match="mode_typo"):
        PinningConfig.model_validate({"mode_typo": "x"})
    config = PinningConfig()
    assert (config.mode.value, config.hide_poisoned, str(config.path)) == (
        "trust_on_first_use",
        True,
        "var/pins.db",
    )


async def test_opening_creates_the_folder_and_uses_wal(tmp_path: Path) -> None:
    db = tmp_path / "var" / "pins.db"
    async with opened(db) as pins:
        await pins.review("wx", [weather()])
    assert db.exists()
    assert db.with_name("pins.db-wal").exists() or db.stat().st_size > 0


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "pins.db"
    db.write_bytes(b"this is not a database, just some text that is long enough" * 20)
    with pytest.raises(PinStoreError, match=r"pins\.db"):
        async with opened(db):
            pass


async def test_a_review_whose_commit_fails_is_refused_and_the_next_one_is_kept(tmp_path: Path) -> None:
    async with opened(tmp_path / "pins.db") as pins:
        pins._conn = FailingCommitOnce(pins._conn)  # type: ignore[assignment]
        with pytest.raises(PinStoreError, match="disk is full"):
            await pins.review("wx", [weather()])
        review = await pins.review("wx", [weather()])
        records = await pins.records()
    assert [tool.name for tool in review.allowed] == ["get_weather"]
    assert [(record.name, record.pin is not None) for record in records] == [("get_weather", True)]
