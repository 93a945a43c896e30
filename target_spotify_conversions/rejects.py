"""Rejected records: counted, logged without personal data, kept on disk (docs/contract.md §5)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from .privacy import shown_id
from .problems import Problem
from .report import RunReport

_ENCODER = msgspec.json.Encoder(decimal_format="number")
# Rejected lines are kept in memory up to this size, then written in one append.
FLUSH_BYTES = 1 << 16


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
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        written = os.write(self._fd, data)
        while written < len(data):  # only a full disk or a signal cuts a write short
            written += os.write(self._fd, data[written:])

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
