"""Rejected records: counted, logged once without personal data, and kept for a fix (SPEC 5)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from .mapping import Problem
from .report import RunReport

_ENCODER = msgspec.json.Encoder(decimal_format="number")


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
    ) -> None:
        self._report = report
        self._logger = logger
        self._fail = fail
        self._redact = redact
        self._file: IO[bytes] | None = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "wb")  # noqa: SIM115 - closed by close()

    def reject(
        self, stream: str, event_id: str, reasons: Sequence[Problem], record: Mapping[str, Any]
    ) -> None:
        """Count, log and keep one rejected record; raise when the run must stop."""
        text = [str(problem) for problem in reasons]
        self._report.reject(stream, event_id, zip((p.code for p in reasons), text, strict=True))
        if self._file is not None:
            line = {
                "stream": stream,
                "event_id": event_id,
                "reasons": text,
                "record": self._redact(record, event_id),
            }
            self._file.write(_ENCODER.encode(line) + b"\n")
        if self._fail:
            raise RejectedRecordError(
                f"stopped at the first invalid record (on_invalid is 'fail'): stream '{stream}', "
                f"event_id {event_id}: {'; '.join(text)}"
            )

    def flush(self) -> None:
        """Called before any STATE is written, so a checkpoint never covers an unsaved reject."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
