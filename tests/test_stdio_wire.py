"""Which stdio descriptors the event loop waits on itself, and which go to the SDK's threads."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcp_guard.stdio_wire import pollable


@contextmanager
def opened(path: str | Path, flags: int) -> Iterator[int]:
    fd = os.open(path, flags)
    try:
        yield fd
    finally:
        os.close(fd)


def test_pipes_and_sockets_are_waited_on_by_the_event_loop() -> None:
    read, write = os.pipe()
    left, right = socket.socketpair()
    try:
        assert pollable(read) and pollable(write)
        assert pollable(left.fileno())
    finally:
        for fd in (read, write):
            os.close(fd)
        left.close()
        right.close()


def test_a_regular_file_is_left_to_the_threaded_streams(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("{}\n", encoding="utf-8")
    with opened(tmp_path / "in.jsonl", os.O_RDONLY) as fd:
        assert not pollable(fd)


def test_dev_null_is_left_to_the_threaded_streams_as_epoll_refuses_it() -> None:
    with opened(os.devnull, os.O_RDONLY) as reading, opened(os.devnull, os.O_WRONLY) as writing:
        assert not pollable(reading)
        assert not pollable(writing)
