"""Reads cut into lines of at most a limit: the same lines as a plain split, in linear time."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from target_spotify_conversions.line_splitter import LineSplitter, TooLong


def split(data: bytes, block: int, limit: int) -> list[bytes | TooLong]:
    splitter = LineSplitter(limit)
    lines: list[bytes | TooLong] = []
    for start in range(0, len(data), block):
        text, got = splitter.feed(data[start : start + block])
        if all(isinstance(line, bytes) for line in got):  # the text they were cut from
            assert b"".join(line + b"\n" for line in got) == text
        lines += got
    return lines + splitter.end()


def expected(data: bytes, limit: int) -> list[bytes | TooLong]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [TooLong(len(line)) if len(line) > limit else line for line in lines]


@given(
    st.lists(st.sampled_from([b"a", b"bb", b"\n", b"cccccccc", b"{}"]), max_size=80),
    st.integers(1, 20),
    st.integers(1, 12),
)
def test_the_lines_are_a_plain_splits_with_the_long_ones_as_their_size(pieces, block, limit):
    data = b"".join(pieces)
    assert split(data, block, limit) == expected(data, limit)


def test_a_line_of_300_mb_is_read_past_in_linear_time_holding_at_most_the_limit():
    splitter = LineSplitter(4 << 20)
    block = b"a" * (1 << 20)
    started = time.monotonic()
    for _ in range(300):
        assert splitter.feed(block) == (b"", [])
        assert splitter._held <= 4 << 20  # what is kept of the line: at most the limit
    text, lines = splitter.feed(b"aa\n{}\n")
    took = time.monotonic() - started
    assert lines == [TooLong(300 * (1 << 20) + 2), b"{}"]
    assert text == b"{}\n"
    assert took < 3.0, f"{took:.1f} s to read past 300 MB"
