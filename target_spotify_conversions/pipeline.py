"""The target's work for one run, outside the SDK: record in, event mapped, delivered or rejected.

The SDK sink calls `process` for each record and `drain` when it drains; the target calls
`finish` or `fail` once at the end.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .client import CapiClient
from .delivery import Delivery, DryRunFile, Outcome, Pending, Transport
from .mapping import EventMapper, Problem
from .mapping_process import MappedRecord, MappingProcess
from .rejects import Rejects
from .report import RunReport
from .settings import Settings

# Chunks sent to the mapping process and not yet handed on: enough to keep it busy.
MAX_CHUNKS_OUT = 2
# A record waiting for the mapping process: its number, its stream, the record itself.
Queued = tuple[int, str, Mapping[str, Any]]


class Pipeline:
    """Everything one run shares across streams: mapper, delivery, rejects and counts."""

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        write_state: Callable[[Any], None],
    ) -> None:
        self.settings = settings
        # First, while this process has one thread and no open file: the worker is a fork.
        self.mapping = MappingProcess(settings.mapping)
        self._chunk_size = settings.events_per_request
        self._chunk: list[Queued] = []
        self._mapping: deque[list[Queued]] = deque()  # chunks sent, results not taken
        self._waiting_since: float | None = None  # first record read since the last idle flush
        run_id = str(uuid.uuid4())
        started = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.report = RunReport(logger, run_id=run_id, dry_run=settings.dry_run)
        self.mapper = EventMapper(settings.mapping)
        self.rejects = Rejects(
            self.report,
            logger,
            path=settings.rejects_file,
            fail=settings.fail_on_invalid,
            redact=self.mapper.redact,
            run={"run_id": run_id, "run_started": started},
        )
        self.transport = _transport(settings)
        self.delivery = Delivery(
            self.transport,
            settings.connection_id,
            events_per_request=settings.events_per_request,
            max_concurrent_requests=settings.max_concurrent_requests,
            on_outcome=self._on_outcome,
            write_state=write_state,
        )

    def process(
        self, record: Mapping[str, Any], stream: str, problems: Sequence[Problem] = ()
    ) -> None:
        """Queue one record for mapping, or reject it; `problems` come from the SDK side."""
        seq = self.delivery.checkpoints.record()
        self.report.read(stream)
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        if problems:
            self.rejects.reject(stream, self.mapper.event_id(record, stream), problems, record)
            return
        if not self._chunk:
            self.delivery.checkpoints.hold(seq)
        self._chunk.append((seq, stream, record))
        if len(self._chunk) >= self._chunk_size:
            self._send_chunk()

    def _send_chunk(self) -> None:
        """Records go to the mapping process in chunks; at most a few chunks are out at once."""
        chunk, self._chunk = self._chunk, []
        self.mapping.submit([(stream, record) for _, stream, record in chunk])
        self._mapping.append(chunk)
        while len(self._mapping) > MAX_CHUNKS_OUT:
            self._take_mapped(wait=True)
        self._take_mapped(wait=False)

    def _take_mapped(self, *, wait: bool) -> None:
        """Hand mapped chunks, in the order they were sent, to delivery and rejects."""
        while self._mapping and (wait or self.mapping.ready()):
            chunk = self._mapping.popleft()
            for (seq, stream, record), mapped in zip(chunk, self.mapping.take(), strict=True):
                self._mapped(seq, stream, record, mapped)
            self.delivery.checkpoints.release(chunk[0][0])
            wait = False

    def _mapped(
        self, seq: int, stream: str, record: Mapping[str, Any], mapped: MappedRecord
    ) -> None:
        if mapped.warnings:
            self.report.warn(stream, mapped.event_id, mapped.warnings)
        if mapped.skipped:
            self.report.skip_no_consent()
            return
        if mapped.body is None:
            self.rejects.reject(stream, mapped.event_id, mapped.reasons, record)
            return
        item = Pending(stream, mapped.event_id, mapped.body, record, mapped.identifiers)
        if not self.delivery.fits(item):
            too_big = Problem("event_too_large", "the event alone exceeds the 1 MB request limit")
            self.rejects.reject(stream, item.event_id, [too_big], record)
            return
        self.delivery.add(seq, item)

    def unreadable(self, line_number: int, why: str) -> None:
        """A line that is no Singer message may have been a record: never lose it silently."""
        self.delivery.checkpoints.record()
        self.report.read("(input)")
        problem = Problem("unreadable_input_line", why)
        self.rejects.reject("(input)", f"line-{line_number}", [problem], {})

    def state(self, value: Any) -> None:
        self._take_mapped(wait=False)
        self.delivery.state(value)

    def idle(self) -> None:
        """Called every half second by the reader, whether or not input is arriving.

        Writes the STATEs that finished requests allow, and once a record read has waited
        `batch_wait_limit_seconds`, sends the partial chunk and request without waiting for
        them: a quiet tap (CDC, streaming, a slow query) must not hold events and STATE.
        """
        since = self._waiting_since
        if since is not None and time.monotonic() - since >= self.settings.batch_wait_limit_seconds:
            self._waiting_since = None
            if self._chunk:
                self._send_chunk()
            while self._mapping:
                self._take_mapped(wait=True)
            self.delivery.flush()
        self.delivery.poll()

    def stop(self) -> None:
        """A stop was requested: requests make no more retries and nothing waits to send."""
        self.transport.abort()

    def drain(self) -> None:
        """Map, send and settle everything read so far."""
        if self._chunk:
            self._send_chunk()
        while self._mapping:
            self._take_mapped(wait=True)
        self.delivery.drain()

    def finish(self, outcome: str = "completed") -> None:
        """Deliver what is left, close files, and print the summary."""
        self.drain()
        self._close(abandon=False)
        self._summary(outcome)

    def fail(self, outcome: str) -> None:
        """Stop sending at once (nothing more is checkpointed) and print the summary."""
        self._close(abandon=True)
        self._summary(outcome)

    def _on_outcome(self, outcome: Outcome) -> None:
        self.report.deliver(outcome.delivered, outcome.identifier_masks)
        for item, problem in outcome.refused:
            self.rejects.reject(item.stream, item.event_id, [problem], item.record)

    def _close(self, *, abandon: bool) -> None:
        self.mapping.close(abandon=abandon)
        self.delivery.close(abandon=abandon)
        if isinstance(self.transport, DryRunFile):
            self.transport.close()
        self.rejects.close()

    def _summary(self, outcome: str) -> None:
        requests, retries = self.transport.requests_made, self.transport.retries
        self.report.log_summary(requests, retries, outcome)
        if self.settings.summary_file:
            self.report.write_file(self.settings.summary_file, requests, retries, outcome)


def _transport(settings: Settings) -> Transport:
    if settings.dry_run:
        return DryRunFile(settings.dry_run_file)
    return CapiClient(
        settings.api_url,
        settings.auth_token,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
    )
