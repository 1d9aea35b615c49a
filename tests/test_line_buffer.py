"""Splitting a byte stream into newline-delimited messages, whatever the chunking."""

from __future__ import annotations

from mcp_guard.line_buffer import LineBuffer


def test_lines_split_across_chunks_come_out_whole_and_in_order() -> None:
    lines = LineBuffer()
    seen = [
        *lines.feed(b'{"a":'),
        *lines.feed(b"1}\n{"),
        *lines.feed(b'"b":2}\n\n{"c"'),
        *lines.feed(b":3}\n"),
    ]
    assert seen == [b'{"a":1}', b'{"b":2}', b"", b'{"c":3}']
    assert len(lines) == 0


def test_a_long_line_fed_byte_by_byte_ends_where_its_newline_is() -> None:
    lines = LineBuffer()
    text = b"x" * 1000
    assert [line for byte in text for line in lines.feed(bytes([byte]))] == []
    assert len(lines) == 1000
    assert list(lines.feed(b"y\nz")) == [text + b"y"]
    assert len(lines) == 1


def test_the_unended_rest_is_handed_over_once() -> None:
    lines = LineBuffer()
    assert list(lines.feed(b"one\ntwo")) == [b"one"]
    assert lines.take_rest() == b"two"
    assert lines.take_rest() == b""
    assert list(lines.feed(b"three\n")) == [b"three"]
