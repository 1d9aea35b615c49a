"""Which stdio descriptors the event loop waits on itself, and which go to the SDK's threads."""

from __future__ import annotations

import os
import socket
import tty
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import anyio
import pytest

from mcp_guard.stdio_wire import OverlongLine, StdinLines, pollable


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


@pytest.mark.anyio
async def test_a_line_over_the_limit_is_yielded_as_an_overlong_line_and_the_next_line_arrives_whole() -> None:
    read, write = os.pipe()
    try:
        os.write(write, b"x" * 5000 + b"\n" + b'{"jsonrpc": "2.0"}\n')
        os.close(write)
        write = -1
        with anyio.fail_after(10):
            lines = [line async for line in StdinLines(read, max_line_bytes=1024)]
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
    assert len(lines) == 2
    assert isinstance(lines[0], OverlongLine) and lines[0] == "" and lines[0].limit == 1024
    assert lines[1] == '{"jsonrpc": "2.0"}'


@pytest.mark.anyio
async def test_lines_from_a_socket_are_read_to_its_end_leaving_the_descriptor_open_and_blocking() -> None:
    left, right = socket.socketpair()
    try:
        assert os.get_blocking(left.fileno())
        right.sendall(b'{"jsonrpc": "2.0", "method": "a"}\n{"jsonrpc": "2.0", "method": "b"}')
        right.close()
        with anyio.fail_after(10):
            lines = [line async for line in StdinLines(left.fileno())]
        assert lines == ['{"jsonrpc": "2.0", "method": "a"}', '{"jsonrpc": "2.0", "method": "b"}']
        assert os.get_blocking(left.fileno())  # still open, its blocking mode restored
    finally:
        left.close()
        right.close()


@pytest.mark.anyio
async def test_a_line_typed_at_a_terminal_is_read_and_the_terminal_is_left_open_and_blocking() -> None:
    terminal, typist = os.openpty()
    try:
        tty.setraw(terminal)  # no line-ending translation
        os.write(typist, b'{"jsonrpc": "2.0", "method": "typed"}\n')
        lines = cast(AsyncGenerator[str], aiter(StdinLines(terminal)))
        with anyio.fail_after(10):
            first = await anext(lines)
            await lines.aclose()
        assert first == '{"jsonrpc": "2.0", "method": "typed"}'
        assert os.get_blocking(terminal) and os.isatty(terminal)
    finally:
        os.close(terminal)
        os.close(typist)
