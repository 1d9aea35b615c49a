"""Hot reload: swap atomically, or keep the running set."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from mcp_guard.decision import Decision
from mcp_guard.errors import ConfigError
from mcp_guard.policy import PolicySet, PolicyStore

from .helpers import request, write

GOOD = "rules:\n  - {id: r, decision: WARN}\n"
BETTER = "rules:\n  - {id: r, decision: BLOCK}\n"
BROKEN = "rules:\n  - {id: r, decision: MAYBE}\n"


def test_reload_swaps_in_the_new_set(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", GOOD)
    store = PolicyStore(tmp_path)
    write(tmp_path, "p.yaml", BETTER)
    assert store.changed()
    before = store.current().digest
    new = store.reload()
    assert store.current() is new
    assert len(new.digest) == 64 and new.digest != before
    assert store.current().evaluate(request()).decision is Decision.BLOCK


def test_reload_keeps_the_old_set_when_a_file_is_broken(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", GOOD)
    store = PolicyStore(tmp_path)
    old = store.current()
    write(tmp_path, "p.yaml", BROKEN)
    with pytest.raises(ConfigError) as exc:
        store.reload()
    assert exc.value.problems[0].startswith(f"{tmp_path / 'p.yaml'}:2: ")
    assert store.current() is old
    current, error = store.try_reload()
    assert current is old and error is not None
    assert store.current().evaluate(request()).decision is Decision.WARN


def test_a_broken_folder_cannot_start_a_store(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", BROKEN)
    with pytest.raises(ConfigError):
        PolicyStore(tmp_path)


@pytest.mark.anyio
async def test_watch_reloads_on_change_and_reports_refusals(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", GOOD)
    store = PolicyStore(tmp_path)
    events: list[tuple[PolicySet | None, ConfigError | None]] = []
    changed = anyio.Event()

    async def on_reload(new: PolicySet | None, error: ConfigError | None) -> None:
        events.append((new, error))
        changed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: store.watch(on_reload, interval_s=0.01))
        write(tmp_path, "p.yaml", BROKEN + "# changed size\n")
        with anyio.fail_after(5):
            await changed.wait()
        changed = anyio.Event()
        write(tmp_path, "p.yaml", BETTER + "# and again, a different size\n")
        with anyio.fail_after(5):
            await changed.wait()
        tg.cancel_scope.cancel()
    assert events[0][0] is None and events[0][1] is not None
    assert events[1][0] is store.current() and events[1][1] is None
    assert store.current().evaluate(request()).decision is Decision.BLOCK


def test_a_folder_that_cannot_be_listed_any_more_is_a_refused_reload_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write(folder, "p.yaml", GOOD)
    store = PolicyStore(folder)
    old = store.current()
    (folder / "p.yaml").unlink()
    folder.rmdir()
    os.mkfifo(folder)  # exists, but is neither a file nor a folder that can be listed
    current, error = store.try_reload()
    assert current is old and store.current() is old
    assert error is not None and error.problems[0].startswith(f"{folder}:0: cannot list the policy folder")


def test_a_folder_emptied_while_running_is_a_refused_reload_not_an_allow_all(tmp_path: Path) -> None:
    """A deploy caught half-way, or a mistaken rm: the running policies stay."""
    write(tmp_path, "p.yaml", BETTER)
    store = PolicyStore(tmp_path)
    old = store.current()
    (tmp_path / "p.yaml").unlink()
    current, error = store.try_reload()
    assert current is old and store.current() is old
    assert error is not None and "holds no policy files any more" in error.problems[0]
    assert store.current().evaluate(request()).decision is Decision.BLOCK
