"""Reading Singer messages without ever echoing an input line, and stopping cleanly on a signal.

The SDK's readers put the whole offending line (a record full of personal data) into their log
and exception messages; this one names the line number only.
"""

from __future__ import annotations

import decimal
import os
import select
import sys
import time
import typing as t
from collections import Counter
from collections.abc import Callable, Sequence

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from .escaping import printable
from .line_splitter import LineSplitter, TooLong
from .messages import check_message
from .privacy import quoted
from .unreadable import (
    MAX_LINE_BYTES,
    may_stay_raw,
    nested_too_deep,
    not_json,
    text_may_stay_raw,
    too_long,
)

READ_BUFFER_BYTES = 1 << 20
# How often the reader lets the pipeline write STATEs and send what waited too long.
TICK_SECONDS = 0.5
# Numbers with a fraction become Decimal, as with the SDK's own readers.
_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)


class _RecordLine(msgspec.Struct, gc=False):
    """A RECORD line with its record left undecoded (other fields are skipped); one per line,
    out of the collector's sight (it holds no cycle)."""

    type: str
    stream: str
    record: msgspec.Raw


_RECORD_LINE = msgspec.json.Decoder(_RecordLine)
# How RECORD lines begin as taps write them, around the stream's name: compact (singer-sdk,
# msgspec) and with spaces (singer-python's json.dumps). A line beginning otherwise is read here.
_RECORD_STARTS = (
    (b'{"type":"RECORD","stream":"', b'","record":{'),
    (b'{"type": "RECORD", "stream": "', b'", "record": {'),
)
_RAW = msgspec.json.Decoder(msgspec.Raw)


def raw_record(line: bytes, *, text_ok: bool = False) -> msgspec.Raw | None:
    """A line holding one record (a BATCH file's), undecoded, if it may stay so (`text_ok`:
    see may_stay_raw)."""
    if not may_stay_raw(line, text_ok=text_ok):
        return None
    try:
        raw = _RAW.decode(line)
    except msgspec.DecodeError:
        return None  # the full path says why
    return raw if line[:1] == b"{" or _is_object(raw) else None  # most lines start with it


def raw_records(text: bytes, lines: Sequence[bytes]) -> list[msgspec.Raw | None]:
    """`raw_record` of each of a BATCH file's lines (`text` is them as read), with the scans
    that hold for all if for their text made once."""
    text_ok = text_may_stay_raw(text)
    return [raw_record(line, text_ok=text_ok) for line in lines]


def _is_object(raw: msgspec.Raw) -> bool:
    return memoryview(raw)[0] == ord("{")


class StopReading(BaseException):
    """Raised by the signal handler while the reader waits for input."""


class SafeReader(MsgSpecReader):
    """msgspec decoding (4x the default reader), value-free errors, signal-aware loop."""

    @property
    def default_input(self) -> t.IO[t.Any]:  # type: ignore[override]
        """Standard input, read as bytes from its file descriptor (see `_lines`)."""
        return sys.stdin

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        self.waiting_for_input = False
        self.stop_requested = False
        self.on_start: Callable[[], None] | None = None
        # RECORD lines of these streams go to `on_raw_lines` whole and undecoded.
        self.raw_streams: set[str] = set()
        self.on_unreadable: Callable[[int, str], None] | None = None
        # A line over `max_line_bytes`: its number and size (its bytes were never kept).
        self.max_line_bytes = MAX_LINE_BYTES
        self.on_too_long: Callable[[int, int], None] | None = None
        self.on_tick: Callable[[], None] | None = None
        # Runs of RECORD lines of these streams go to `on_raw_lines` whole (`_take_lines`):
        # the stream, the lines, the number of the first.
        self.on_raw_lines: Callable[[str, Sequence[bytes], int], None] | None = None

    def deserialize_json(self, line: str | bytes) -> dict[str, t.Any]:
        try:
            message = _DECODER.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError, decimal.InvalidOperation):
            # InvalidOperation: a number whose exponent no Decimal can hold (1e99999999999999999999)
            raise InvalidInputLine(not_json(self.line_number, len(line))) from None
        except RecursionError:  # caught here, where it surfaces: no walk over every line
            raise InvalidInputLine(nested_too_deep(self.line_number)) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(f"input line {self.line_number} is not a JSON object")
        return message

    @staticmethod
    def assert_line_requires(line_dict: dict[str, t.Any], requires: set[str]) -> None:
        missing = requires - set(line_dict)
        if missing:
            raise InvalidInputLine(
                f"a message of type {quoted(line_dict.get('type'), 22)} lacks "
                f"{printable(', '.join(sorted(missing)))}"
            )

    def _unknown_message(self, message_dict: dict[str, t.Any]) -> None:
        raise InvalidInputLine(
            f"input line {self.line_number} has unknown message type "
            f"{quoted(message_dict.get('type'), 22)}"
        )

    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, t.Any]], None]],
    ) -> t.Counter[str]:
        """The SDK's loop, plus: `on_start` is called before the first line is read,
        unreadable lines go to `on_unreadable`, `on_tick` is called about every TICK_SECONDS
        even while the tap sends nothing, and a signal stops it.

        The signal handler raises StopReading only while `waiting_for_input` is set, that is
        only around the blocking calls in `_chunks`, and clears the flag itself, so it raises
        at most once.
        """
        stats: Counter[str] = Counter()
        if self.on_start is not None:
            self.on_start()
        try:
            for block in self._blocks(file_input or self.default_input):
                if self.stop_requested:
                    break
                if block is None:
                    if self.on_tick is not None:
                        self.on_tick()
                    continue
                self._read_block(*block, callbacks, stats)
        except StopReading:
            pass
        self.waiting_for_input = False
        return stats

    def _read_block(
        self,
        lines: Sequence[bytes | str | TooLong],
        whole: bool,
        callbacks: dict[str, Callable[[dict[str, t.Any]], None]],
        stats: Counter[str],
    ) -> None:
        """The lines of one read, in order: runs of RECORD lines `_take_lines` knows go on
        whole (`whole`: the read holds no line too long), each other line is read here."""
        whole = whole and self.on_raw_lines is not None
        i = 0
        while i < len(lines) and not self.stop_requested:
            taken = self._take_lines(lines, i) if whole and self.raw_streams else 0
            if taken:
                stats["RECORD"] += taken
                i += taken
                continue
            line = lines[i]
            i += 1
            self.line_number += 1
            if isinstance(line, TooLong):
                self._too_long(line.size)
                continue
            if self.raw_streams and self._took_whole(line):
                stats["RECORD"] += 1
                continue
            message = self._read(line)
            if message is not None:
                self._dispatch(message, callbacks)
                stats[message["type"]] += 1

    def _take_lines(self, lines: Sequence[t.Any], start: int) -> int:
        """Hand on the run of lines from `start` that begin as RECORD lines of one raw stream,
        in a form taps write (`_RECORD_STARTS`), undecoded and whole: how many it took.

        Recognised by their start alone; the mapping worker reads each as this reader would,
        and rejects as unreadable a line that is not JSON, nests too deeply or turns out to
        name another type or stream (or a record that is no object) after its start. Its
        decoder refuses invalid UTF-8 as this reader's does, so a read need not be ASCII. Each
        line costs this process a comparison of its start (in a read that holds no line too
        long, so each is bytes)."""
        prefix, stream = self._record_start(lines[start])
        if not prefix:
            return 0
        end = start + 1
        while end < len(lines) and lines[end].startswith(prefix):
            end += 1
        first = self.line_number + 1
        self.line_number += end - start
        t.cast("Callable[[str, Sequence[bytes], int], None]", self.on_raw_lines)(
            stream, lines[start:end], first
        )
        return end - start

    def _record_start(self, line: bytes) -> tuple[bytes, str]:
        """The start a RECORD line of a raw stream has in `line`'s form, and the stream; or
        (b"", "") when `line` has no such start (its stream named with an escape, say)."""
        for head, middle in _RECORD_STARTS:
            if line.startswith(head):
                end = line.find(b'"', len(head))
                name = line[len(head) : end]
                if end < 0 or b"\\" in name or not line.startswith(middle, end):
                    return b"", ""
                try:  # without an escape, the name's JSON is its UTF-8 (or no JSON at all)
                    stream = name.decode()
                except UnicodeDecodeError:
                    return b"", ""
                if stream in self.raw_streams:
                    return line[: end + len(middle)], stream
        return b"", ""

    def _too_long(self, size: int) -> None:
        if self.on_too_long is None:
            raise InvalidInputLine(too_long(self.line_number, size, self.max_line_bytes))
        self.on_too_long(self.line_number, size)

    def _blocks(
        self, source: t.IO[t.Any]
    ) -> t.Iterator[tuple[Sequence[bytes | str | TooLong], bool] | None]:
        """Input lines as bytes, the lines of each read together with whether all are bytes
        (none is TooLong), and None when a tick is due.

        Bytes: a line that is not UTF-8 is then one unreadable line, not a crash, from stdin
        and from `--input FILE` alike. Big reads straight from the file descriptor: each one is
        a system call that lets the request threads take the GIL, and the main thread may then
        wait a whole switch interval to get it back; and no line waits in a buffer while
        select() says there is nothing new to read. A line over `max_line_bytes` comes as its
        size (TooLong), read past in bounded memory (line_splitter.py).
        """
        try:
            fd = source.fileno()
        except (AttributeError, OSError):  # an in-memory stream: no waiting, no ticks
            for line in source:
                yield [line], False
            return
        splitter = LineSplitter(self.max_line_bytes)
        for chunk in self._chunks(fd):
            if chunk is None:
                yield None
                continue
            _, lines = splitter.feed(chunk)
            yield lines, splitter.whole
        for line in splitter.end():
            yield [line], False

    def _chunks(self, fd: int) -> t.Iterator[bytes | None]:
        """Reads of up to READ_BUFFER_BYTES until end of input, with None every TICK_SECONDS."""
        next_tick = time.monotonic() + TICK_SECONDS
        while True:
            if self.stop_requested:  # seen between reads, even within one long line
                raise StopReading
            wait = next_tick - time.monotonic()
            self.waiting_for_input = True
            ready = select.select([fd], [], [], max(wait, 0.0))[0]
            chunk = os.read(fd, READ_BUFFER_BYTES) if ready else None
            self.waiting_for_input = False
            if chunk == b"":
                return
            if chunk is not None:
                yield chunk
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_SECONDS
                yield None

    def _dispatch(
        self, message: dict[str, t.Any], callbacks: dict[str, Callable[[dict[str, t.Any]], None]]
    ) -> None:
        callback = callbacks.get(message["type"])
        if callback is None:
            self._unknown_message(message)
        else:
            callback(message)

    def _took_whole(self, line: str | bytes) -> bool:
        """Hand on, whole, a RECORD line of a raw stream that `_take_lines` did not know by its
        start (its keys in another order, its stream's name escaped): its type and stream are
        decoded here (the last of each, as the SDK reads them; the record is skipped over),
        the rest by the mapping worker, as for the others, so both read it alike."""
        if not isinstance(line, bytes) or self.on_raw_lines is None:
            return False
        try:
            message = _RECORD_LINE.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return False  # not a RECORD, or not readable: the full path says which
        if message.type != "RECORD" or message.stream not in self.raw_streams:
            return False
        if not _is_object(message.record):
            return False
        self.on_raw_lines(message.stream, [line], self.line_number)
        return True

    def _read(self, line: str | bytes) -> dict[str, t.Any] | None:
        if not line.strip():
            return None
        try:
            message = self.deserialize_json(line)
            self.assert_line_requires(message, {"type"})
            try:
                check_message(message, line)
            except InvalidInputLine as exc:
                raise InvalidInputLine(f"input line {self.line_number}: {exc}") from None
        except InvalidInputLine as exc:
            if self.on_unreadable is None:
                raise
            self.on_unreadable(self.line_number, str(exc))
            return None
        return message
