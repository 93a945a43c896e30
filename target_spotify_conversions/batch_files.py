"""The records of a Singer BATCH message: a tap wrote them to files and sends only the file names.

Taps built on the Singer SDK send BATCH messages when their `batch_config` is set, which is
how they export large tables fast. The files are read here line by line (never a whole file in
memory) and each line goes through the same path as a RECORD message, so a batch is validated,
mapped, rejected and delivered exactly like the same records sent one by one.

Gzip files are inflated with python-isal (Intel ISA-L, about 3x zlib's speed: the reading
process inflates every line, so zlib made a BATCH slower than the same records as RECORD
lines). Files are opened with universal-pathlib (the SDK's own dependency): `file://` URLs
and plain paths always work; other schemes (`s3://`, `gs://`, ...) work when their fsspec
package is installed next to the target.
"""

from __future__ import annotations

import os
import stat
import typing as t
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any, NamedTuple

from isal import igzip, isal_zlib
from upath import UPath

from .line_splitter import Line, LineSplitter, TooLong
from .privacy import shown_url
from .unreadable import MAX_LINE_BYTES

# Compression values taps write, and what "no compression" may be spelled as.
_UNCOMPRESSED = (None, "none", "")
_COMPRESSIONS = ("gzip", *_UNCOMPRESSED)


class BatchFileError(Exception):
    """A BATCH message or one of its files cannot be read; the run must stop before its STATE."""


class Block(NamedTuple):
    """About a megabyte of whole lines of one file: per-line work is then a loop over a list,
    and a check that holds for `text` holds for each of its `lines`."""

    url: str
    first: int  # the number of the first line in its file
    text: bytes  # the lines as read, line breaks included
    lines: list[bytes]  # without their line break; blank ones kept, so numbers stay right
    # Lines over the limit, by their index in `lines` (where they stand as b""): their sizes.
    too_long: dict[int, int]


def _never() -> bool:
    return False


def batch_blocks(
    message: Mapping[str, Any],
    max_line_bytes: int = MAX_LINE_BYTES,
    stopped: Callable[[], bool] = _never,
) -> Iterator[Block]:
    """Every file of a BATCH message, in order, a block at a time; none once `stopped()`
    (checked at each read, also while a long line is read past)."""
    stream = str(message.get("stream"))[:100]
    gzipped = _check_encoding(message.get("encoding"), stream)
    manifest = message.get("manifest")
    if not isinstance(manifest, list) or not all(isinstance(url, str) for url in manifest):
        raise BatchFileError(f"BATCH message of stream {stream!r}: manifest is no list of URLs")
    for url in manifest:
        if stopped():
            return
        yield from _file_blocks(url, gzipped, stream, LineSplitter(max_line_bytes), stopped)


def _check_encoding(encoding: object, stream: str) -> bool:
    """Whether the files are gzipped; only JSON Lines, plain or gzipped, is read."""
    if not isinstance(encoding, Mapping):
        raise BatchFileError(f"BATCH message of stream {stream!r} has no encoding object")
    file_format, compression = encoding.get("format"), encoding.get("compression")
    if file_format != "jsonl" or compression not in _COMPRESSIONS:
        raise BatchFileError(
            f"BATCH message of stream {stream!r}: format {str(file_format)[:20]!r} with "
            f"compression {str(compression)[:20]!r} is not supported; set the tap's "
            'batch_config encoding to {"format": "jsonl", "compression": "gzip"} (or "none")'
        )
    return compression == "gzip"


def _file_blocks(
    url: str, gzipped: bool, stream: str, splitter: LineSplitter, stopped: Callable[[], bool]
) -> Iterator[Block]:
    _check_regular(url, stream)
    try:
        with UPath(url).open("rb") as raw, _decompressed(raw, gzipped) as file:
            first = 1
            for text, lines in _blocks(file, splitter, stopped):
                yield _block(url, first, text, lines)
                first += len(lines)
    except _UNREADABLE as exc:
        raise BatchFileError(
            f"BATCH file {shown_url(url)!r} of stream {stream!r} cannot be read "
            f"({type(exc).__name__}: {_without_url(str(exc), url)[:200]})"
        ) from None


def _without_url(message: str, url: str) -> str:
    """An error's message with the URL it may quote shown as `shown_url` shows it (a file
    system's errors repeat the URL, credentials and all)."""
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    message = message.replace(url, shown_url(url))
    return message.replace(userinfo + "@", "") if userinfo else message


def _check_regular(url: str, stream: str) -> None:
    """A local BATCH file must be a regular file: opening a FIFO waits for a writer, for ever
    and deaf to a stop signal (a missing file is left to the open, which says so)."""
    path = UPath(url)
    if path.protocol not in ("", "file", "local"):
        return
    try:
        mode = os.stat(path.path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise BatchFileError(
            f"BATCH file {shown_url(url)!r} of stream {stream!r} is not a regular file (a FIFO, a "
            "device or a directory): it cannot be read as a batch"
        )


# OSError covers missing files, permissions and bad gzip headers (BadGzipFile); the isal
# error a corrupt deflate stream; EOFError a file cut short.
_UNREADABLE: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    t.cast("type[BaseException]", isal_zlib.error),
    ImportError,
    ValueError,
)

# Bytes read (after decompression) at a time: lines are split from blocks in C, which costs
# less than a readline per line.
READ_BYTES = 1 << 20


def _blocks(
    file: IO[bytes], splitter: LineSplitter, stopped: Callable[[], bool]
) -> Iterator[tuple[bytes, list[Line]]]:
    """A file's whole lines, a block at a time: as read, and split (line_splitter.py)."""
    while read := file.read(READ_BYTES):
        text, lines = splitter.feed(read)
        if lines:
            yield text, lines
        if stopped():
            return
    last = splitter.end()
    if last:
        yield (last[0] if isinstance(last[0], bytes) else b""), last


def _block(url: str, first: int, text: bytes, lines: list[Line]) -> Block:
    """A block with its too long lines set apart (few blocks have one: one scan finds none)."""
    if all(isinstance(line, bytes) for line in lines):
        return Block(url, first, text, t.cast("list[bytes]", lines), {})
    too_long = {i: line.size for i, line in enumerate(lines) if isinstance(line, TooLong)}
    kept = [b"" if isinstance(line, TooLong) else line for line in lines]
    return Block(url, first, text, kept, too_long)


def _decompressed(raw: IO[bytes], gzipped: bool) -> AbstractContextManager[IO[bytes]]:
    if gzipped:
        inflated = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
        return t.cast("AbstractContextManager[IO[bytes]]", inflated)
    return nullcontext(raw)
