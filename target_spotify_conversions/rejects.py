"""Rejected records: counted, logged without personal data, kept on disk (docs/contract.md §5)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
import typing as t
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from .privacy import shown_id
from .problems import Problem
from .report import RunReport

try:  # POSIX; elsewhere runs sharing a rejects file do not take turns
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_ENCODER = msgspec.json.Encoder(decimal_format="number")
# Rejected lines are kept in memory up to this size, then written in one append.
FLUSH_BYTES = 1 << 16
# Seconds this run waits for its turn at a shared rejects file, once: far more than another
# run's write takes. A lock held longer (a run stopped mid-write, a foreign `flock`) is not
# waited for again: the run writes without turns from then on, so every stop stays bounded.
TURN_WAIT = 5.0


class RejectedRecordError(Exception):
    """on_invalid is 'fail' and a record was rejected."""


class Rejects:
    """The one path every rejection takes, whether the mapping or the API refused the record."""

    def __init__(
        self,
        report: RunReport,
        logger: logging.Logger,
        *,
        path: str | None,
        fail: bool,
        redact: Callable[[Mapping[str, Any], str], dict[str, Any]],
        run: Mapping[str, str],
        routed: bool = False,
    ) -> None:
        """`run` (its id and start time) goes into every line, to pick one run's rejects later.

        The file is appended to, never truncated, and only created by a first reject: the
        rejects of an earlier run are covered by its STATE and would be kept nowhere else.
        """
        self._report = report
        self._logger = logger
        self._fail = fail
        self._redact = redact
        self._run = dict(run)
        self._routed = routed  # several connections: each line names the record's
        self._path = path
        self._fd: int | None = None
        self._turns = fcntl is not None  # whether writes still wait for their turn
        self._lines: list[bytes] = []
        self._size = 0

    def reject(
        self,
        stream: str,
        event_id: str,
        reasons: Sequence[Problem],
        record: Mapping[str, Any],
        *,
        kept: bytes | None = None,
        connection: str | None = None,
    ) -> None:
        """Count, log and keep one rejected record; raise when the run must stop.

        `kept`: the record already redacted and encoded (by a mapping worker), used as it is.
        `connection`: where the record was routed (None: nowhere).
        """
        text = [str(problem) for problem in reasons]
        codes = zip([p.code for p in reasons], text, strict=True)
        self._report.reject(stream, event_id, codes, connection=connection)
        if self._path:
            line = {
                **self._run,
                "stream": stream,
                **({"connection": connection} if self._routed else {}),
                "event_id": shown_id(event_id),
                "reasons": text,
                "record": self._redact(record, event_id) if kept is None else msgspec.Raw(kept),
            }
            self._lines.append(_ENCODER.encode(line) + b"\n")
            self._size += len(self._lines[-1])
            if self._size >= FLUSH_BYTES or self._fail:
                self.flush()
        if self._fail:
            raise RejectedRecordError(
                f"stopped at the first invalid record (on_invalid is 'fail'): stream '{stream}', "
                f"event_id {shown_id(event_id)}: {'; '.join(text)}"
            )

    def flush(self) -> None:
        """Called before any STATE is written, so a checkpoint never covers an unsaved reject.

        Whole lines in one write to an O_APPEND file: two runs appending at once never
        interleave half lines.
        """
        if not self._lines or not self._path:
            return
        data = b"".join(self._lines)
        self._lines, self._size = [], 0
        if self._fd is None:
            self._fd = self._open()
        with self._turn(self._fd):
            written = os.write(self._fd, data)
            while written < len(data):  # only a full disk or a signal cuts a write short
                written += os.write(self._fd, data[written:])

    def _open(self) -> int:
        """The file, opened to append; never blocks (O_NONBLOCK: a FIFO put there since the
        start-up check is refused, not waited on). A file ending in half a line (a full disk
        in an earlier run) gets its line ended first, so each line stays one JSON object; it
        is looked at in this run's turn, as another run's write of many lines may be half
        done otherwise."""
        path = t.cast("str", self._path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                if path == os.devnull:  # shared by every process: no turns to take there
                    self._turns = False
                    return fd
                raise OSError(errno.EINVAL, "rejects_file is not a regular file")
            with self._turn(fd):
                size = os.fstat(fd).st_size
                if size and not _ends_a_line(path, size):
                    os.write(fd, b"\n")
                    self._logger.warning(
                        "rejects_file ended in half a line (an earlier run was cut short, e.g. "
                        "by a full disk): this run's rejects start on a new line"
                    )
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def _turn(self, fd: int) -> Iterator[None]:
        """This run's turn at the file (an exclusive flock): runs appending to one rejects
        file each write whole lines, and none looks at the file's end while another writes."""
        locked = self._turns and _lock(fd, TURN_WAIT)
        if self._turns and not locked:
            self._turns = False
            self._logger.warning(
                "rejects_file could not be locked within %g s (another process holds it, or "
                "its file system has no locks): this run writes its rejects without waiting "
                "for its turn from now on",
                TURN_WAIT,
            )
        try:
            yield
        finally:
            if locked:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)


def _lock(fd: int, wait: float) -> bool:
    """An exclusive flock within `wait` seconds; False when not had (or not possible)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        except OSError:  # a file system without locks: append as before
            return False


def _ends_a_line(path: str, size: int) -> bool:
    """Whether the file's last byte is a line break (read through its own descriptor: the
    append descriptor cannot read)."""
    with open(path, "rb") as file:
        file.seek(size - 1)
        return file.read(1) == b"\n"
