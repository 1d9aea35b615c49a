"""Opening the pin database and its configuration."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from mcp_guard.pinning import PinningConfig, PinStoreError
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
