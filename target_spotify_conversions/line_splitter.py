"""Reads cut into lines, each at most a limit long, in linear time and bounded memory.

Stdin (reader.py) and BATCH files (batch_files.py) are read a block at a time. A line that
spans many blocks was rebuilt as `rest + block` on each one: quadratic time, and no bound on
memory (a 306 kB gzip file inflating to one 300 MB line took 48.7 s and 668 MB). Here the
pieces of an unfinished line are kept in a list and joined once, when its end arrives; a line
that grows past the limit is dropped at once and only its size is counted until its end, so at
most the limit plus one block is held, whatever the input.
"""

from __future__ import annotations

from typing import NamedTuple


class TooLong(NamedTuple):
    """A line longer than the limit, in place of its text: its size only."""

    size: int


Line = bytes | TooLong


class LineSplitter:
    """Feed it blocks as read; it hands back whole lines (and the text they were cut from)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pieces: list[bytes] = []  # of the unfinished line, at most `limit` bytes
        self._held = 0
        self._skipped: int | None = None  # bytes of a too long line so far, while skipping it
        self.whole = True  # every line the last `feed` returned is bytes (none is TooLong)

    @property
    def skipping(self) -> bool:
        """Whether a too long line is being read past (callers check for a stop meanwhile)."""
        return self._skipped is not None

    def feed(self, block: bytes) -> tuple[bytes, list[Line]]:
        """The lines `block` completes, and the text they were cut from (line breaks included;
        of a too long line, at most the part in `block`)."""
        lines: list[Line] = []
        self.whole = True
        if self._skipped is not None:
            end = block.find(b"\n")
            if end < 0:
                self._skipped += len(block)
                return b"", lines
            self.whole = False
            lines.append(TooLong(self._skipped + end))
            self._skipped = None
            block = block[end + 1 :]
        if b"\n" not in block:
            self._keep(block)
            return b"", lines
        text = b"".join([*self._pieces, block]) if self._pieces else block
        self._pieces, self._held = [], 0
        cut = text.split(b"\n")
        rest = cut.pop()
        if rest:
            text = text[: len(text) - len(rest)]
            self._keep(rest)
        if max(map(len, cut)) > self.limit:
            self.whole = False
            lines.extend(TooLong(len(line)) if len(line) > self.limit else line for line in cut)
        else:
            lines.extend(cut)
        return text, lines

    def end(self) -> list[Line]:
        """The last line, when the input does not end with a line break."""
        if self._skipped is not None:
            size, self._skipped = self._skipped, None
            return [TooLong(size)]
        if not self._pieces:
            return []
        line = b"".join(self._pieces)
        self._pieces, self._held = [], 0
        return [line]

    def _keep(self, piece: bytes) -> None:
        if not piece:
            return
        self._held += len(piece)
        if self._held > self.limit:  # too long already: from now on only count its bytes
            self._skipped, self._pieces, self._held = self._held, [], 0
        else:
            self._pieces.append(piece)
