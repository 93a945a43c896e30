"""The target's work for one run, outside the SDK: record in, event mapped, delivered or rejected.

The SDK sink calls `process` for each record and `drain` when it drains; the target calls
`state` for each STATE message, and `finish` or `fail` once at the end.

The record path: `process` numbers the record and queues it in a chunk; full chunks go to the
mapping workers; mapped chunks, taken back in order, go to delivery (events) or rejects. The
STATE path: `state` files the STATE behind the records read before it, and `_write_ready_state`
writes it once the oldest unfinished record (in the open chunk, at the workers, or in delivery)
comes after it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from itertools import count, repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from .checkpoints import Checkpoints
from .chunk_codec import decode_raw
from .client import CapiClient
from .concurrency import ConcurrencyLimit
from .connection_delivery import ConnectionDeliveries
from .delivery import Delivery, Outcome, Pending
from .flattening import FlattenedIdentifiers, names_read
from .mapping import INPUT_PROPERTIES, EventMapper
from .problems import Problem
from .rejects import Rejects
from .report import RequestCounts, RunReport, SummaryFileError, summary_file_failed
from .routing import router_for
from .settings import DEFAULT_API_URL, Connection, Settings, dry_run_path
from .transport import DryRunFile, Transport
from .unreadable import INPUT_STREAM, LINE_TOO_LONG, too_long, worded
from .unreadable import problem as unreadable_problem
from .wire import MappedRecord, StreamChecks
from .worker_pool import Entry, start_workers

if TYPE_CHECKING:
    from .ledger import Ledger

# Chunks at each mapping worker and not yet handed on: enough that neither side waits for the
# other (two left the cores idle a tenth of the time; more than four gains nothing).
CHUNKS_OUT_PER_WORKER = 4
# Bytes of raw records (read undecoded: the lean path, BATCH lines) that may wait for the
# mapping workers, in the open chunk and the chunks out: a chunk goes out at CHUNK_BYTES, and
# beyond PENDING_BYTES reading waits for results. Records of 116 kB held 464 MB in eight
# chunks of 500 (delivery bounds what it holds the same way: delivery.HELD_BYTES).
CHUNK_BYTES = 8 << 20
PENDING_BYTES = 64 << 20
# Where a record the workers decode was read: (line number, URL) of a BATCH file's line; a
# whole RECORD line's number alone (its size is the line's).
Origin = tuple[int, str] | int


class Held(NamedTuple):
    """A record rejected before mapping (by the SDK side's checks, a stream map, an unreadable
    line), held in its place among the records read before and after it: the rejects file is
    written in input order whatever path each record took and however many workers map."""

    stream: str
    event_id: str
    reasons: Sequence[Problem]
    record: Mapping[str, Any]
    connection: str | None = None  # where it was routed, for the rejects file


# A record waiting for the mapping workers (or a Held one): its number, its chunk entry,
# where it was read.
Queued = tuple[int, "Entry | Held", Origin | None]


class RejectLimitError(Exception):
    """The run rejected every record it read, or more than `max_rejected_share` of them."""


class Pipeline:
    """Everything one run shares across streams: workers, delivery, rejects, STATE and counts."""

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        write_state: Callable[[Any], None],
    ) -> None:
        self.settings = settings
        # First: the workers start (a fresh interpreter each) while this process reads on.
        self.workers = start_workers(
            settings.mapping_options,
            settings.mapping_processes,
            settings.mapping_worker_timeout_seconds,
        )
        self._max_chunks_out = CHUNKS_OUT_PER_WORKER * max(1, settings.mapping_processes)
        self._chunk_size = settings.events_per_request
        self._chunk: list[Queued] = []
        self._chunks_out: deque[list[Queued]] = deque()  # sent to the workers, results not taken
        self._submitted: deque[bool] = deque()  # of each chunk out: whether workers have it
        self._chunk_bytes = 0  # of the raw records in the open chunk
        self._sizes_out: deque[int] = deque()  # the same of each chunk out
        self._raw_streams: dict[str, StreamChecks] = {}  # as the workers know them
        self.checkpoints = Checkpoints()
        self._write_state = write_state
        self._waiting_since: float | None = None  # first record read since the last idle flush
        self._closed = False  # workers, delivery and files closed by `finish` or `fail`
        self._logger = logger
        run_id = str(uuid.uuid4())
        started = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.report = RunReport(logger, run_id=run_id, dry_run=settings.dry_run)
        self.report.max_rejected_share = settings.max_rejected_share
        self._ended = False
        self.mapper = EventMapper(settings.mapping_options)  # event ids and redaction of rejects
        self.router = router_for(settings.mapping_options)  # for records the SDK side rejects
        self._named = bool(settings.connections)  # several connections: each one named
        if self._named:
            self.report.by_connection(settings.connections)
        self.rejects = Rejects(
            self.report,
            logger,
            path=settings.rejects_file,
            fail=settings.fail_on_invalid,
            redact=self.mapper.redact,
            run={"run_id": run_id, "run_started": started},
            routed=self._named,
        )
        self._flattened = _flattened_identifiers(settings)
        connections = settings.all_connections()
        try:
            self.ledger = _ledger(settings, run_id, logger, len(connections))
        except Exception as exc:
            self.workers.close(abandon=True)
            self.rejects.close()
            if settings.summary_file:  # replaces the last run's: an alert on it must see this
                with contextlib.suppress(OSError):
                    self.report.write_file(settings.summary_file, f"failed: {type(exc).__name__}")
            raise
        self.report.ledger = self.ledger.description if self.ledger else None
        # Each connection has its own limit on requests in flight (one's 429 does not slow the
        # others) and its own counts, which add up in the report's.
        self._limits = {
            name: ConcurrencyLimit(
                settings.max_concurrent_requests, adaptive=settings.adaptive_concurrency
            )
            for name in connections
        }
        self.report.requests.limited(
            settings.max_concurrent_requests, adaptive=settings.adaptive_concurrency
        )
        self.delivery = ConnectionDeliveries(  # one Delivery per connection, made when needed
            {name: connection.connection_id for name, connection in connections.items()},
            {
                name: _transport(
                    settings,
                    connection,
                    self._limits[name],
                    RequestCounts(parent=self.report.requests),
                )
                for name, connection in connections.items()
            },
            self._delivery,
            named=self._named,
        )

    def _delivery(self, connection: str, transport: Transport, connection_id: str) -> Delivery:
        """A connection's Delivery; its outcomes are counted under its name."""
        return Delivery(
            transport,
            connection_id,
            events_per_request=self.settings.events_per_request,
            max_concurrent_requests=self.settings.max_concurrent_requests,
            on_outcome=lambda outcome: self._on_outcome(outcome, connection),
            limit=self._limits[connection],
            ledger=self.ledger,
            on_abandoned=lambda outcome: self._on_abandoned(outcome, connection),
        )

    def process(
        self, record: Mapping[str, Any], stream: str, problems: Sequence[Problem] = ()
    ) -> None:
        """Queue one record for mapping, or reject it; `problems` come from the SDK side."""
        seq = self._arrived(stream)
        if self._flattened is not None:
            self._flattened.observe(record)
        if problems:
            connection = self.router.route(record, stream).connection
            event_id = self.mapper.event_id(record, stream)
            self._reject_in_order(seq, Held(stream, event_id, problems, record, connection))
            return
        self._chunk.append((seq, (stream, record), None))
        if len(self._chunk) >= self._chunk_size:
            self._send_chunk()

    def process_raw(self, stream: str, record: msgspec.Raw, origin: tuple[int, str]) -> None:
        """Queue a BATCH file's line (`origin`: its number and the file's URL), a record left
        undecoded: the workers decode, check and map it. Only for streams `add_raw_stream`
        announced, and lines reader.raw_record allows (their depth bounded as they were read)."""
        self._chunk.append((self._arrived(stream), (stream, record, True), origin))
        self._chunk_bytes += len(record)
        if len(self._chunk) >= self._chunk_size or self._chunk_bytes >= CHUNK_BYTES:
            self._send_chunk()

    def process_lines(self, stream: str, lines: Sequence[bytes], first_number: int) -> None:
        """Queue whole RECORD lines of a raw stream, numbered from `first_number`, as read:
        the workers decode them, and reject as unreadable what the reader would have (see
        reader.SafeReader._take_lines). In one call for a run of lines, which took 2 µs of
        this process's time a line when each was decoded here and handed on by itself."""
        seq = self._arrived(stream, len(lines))
        done = 0
        while done < len(lines):
            room = self._chunk_size - len(self._chunk)
            if room <= 0:  # filled by rejections held in their place (_reject_in_order)
                self._send_chunk()
                continue
            part, size = _up_to_bytes(lines[done : done + room], CHUNK_BYTES - self._chunk_bytes)
            at, number = seq + done, first_number + done
            self._chunk.extend(
                zip(range(at, at + len(part)), zip(repeat(stream), part), count(number))
            )
            self._chunk_bytes += size
            done += len(part)
            if len(self._chunk) >= self._chunk_size or self._chunk_bytes >= CHUNK_BYTES:
                self._send_chunk()

    def add_raw_stream(self, checks: StreamChecks) -> None:
        """A stream whose records may come raw; records read before are sent first, so a new
        SCHEMA of the stream applies from the next record on. A repeated SCHEMA (taps repeat
        them) changes nothing and costs nothing."""
        if self._raw_streams.get(checks.stream) == checks:
            return
        known = checks.stream in self._raw_streams  # a new stream has no records waiting
        self._raw_streams[checks.stream] = checks
        if known and self._chunk:
            self._send_chunk()
        self.workers.add_stream(checks)

    def _arrived(self, stream: str, records: int = 1) -> int:
        seq = self.checkpoints.number(records)
        self.report.read(stream, records)
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        return seq

    def _reject_in_order(self, seq: int, held: Held) -> None:
        """Reject now when nothing read before is still being mapped, else in its turn."""
        if self._chunk or self._chunks_out:
            self._chunk.append((seq, held, None))
            return
        self.rejects.reject(
            held.stream, held.event_id, held.reasons, held.record, connection=held.connection
        )

    def _send_chunk(self) -> None:
        """Records go to the workers in chunks; at most a few chunks, and PENDING_BYTES of
        raw records, are out at once."""
        chunk, self._chunk = self._chunk, []
        entries = [entry for _, entry, _ in chunk if not isinstance(entry, Held)]
        if entries:
            self.workers.submit(entries)
        self._chunks_out.append(chunk)
        self._submitted.append(bool(entries))
        self._sizes_out.append(self._chunk_bytes)
        self._chunk_bytes = 0
        while len(self._chunks_out) > self._max_chunks_out or (
            len(self._chunks_out) > 1 and sum(self._sizes_out) > PENDING_BYTES
        ):
            self._take_mapped(wait=True)
        self._take_mapped(wait=False)
        self._write_ready_state()

    def _take_mapped(self, *, wait: bool) -> None:
        """Hand mapped chunks, in the order they were sent, to delivery and rejects."""
        while self._chunks_out and (wait or not self._submitted[0] or self.workers.ready()):
            chunk = self._chunks_out[0]  # still unfinished while it is handed on
            results = iter(self.workers.take() if self._submitted[0] else ())
            for seq, entry, origin in chunk:
                if isinstance(entry, Held):
                    self.rejects.reject(
                        entry.stream,
                        entry.event_id,
                        entry.reasons,
                        entry.record,
                        connection=entry.connection,
                    )
                    continue
                mapped = next(results)
                if mapped.unreadable and origin is not None:
                    self._unreadable_raw(entry, origin, mapped.unreadable)
                else:
                    self._hand_on(seq, entry[0], entry[1], mapped)
            self._chunks_out.popleft()
            self._submitted.popleft()
            self._sizes_out.popleft()
            wait = False

    def _hand_on(
        self,
        seq: int,
        stream: str,
        record: Mapping[str, Any] | msgspec.Raw | bytes,
        mapped: MappedRecord,
    ) -> None:
        if mapped.warnings:
            self.report.warn(stream, mapped.event_id, mapped.warnings)
        if mapped.skipped:
            self.report.skip_no_consent()
            return
        connection = mapped.connection or None
        if mapped.body is None:
            kept = mapped.kept  # a raw record the worker redacted: no need to decode it here
            decoded = decode_raw(record) if kept is None else {}
            self.rejects.reject(
                stream, mapped.event_id, mapped.reasons, decoded, kept=kept, connection=connection
            )
            return
        item = Pending(
            stream, mapped.event_id, mapped.body, record, mapped.identifiers, mapped.event_time
        )
        if not self.delivery.add(mapped.connection, seq, item):
            too_big = Problem("event_too_large", "the event alone exceeds the 1 MB request limit")
            self.rejects.reject(
                stream, item.event_id, [too_big], decode_raw(record), connection=connection
            )

    def _unreadable_raw(self, entry: Entry, origin: Origin, why: str) -> None:
        """A whole RECORD line a worker found unreadable (not JSON, nested too deeply, naming
        another type or stream), or a BATCH line's record a full decoding refuses: rejected
        as the SDK path rejects its line."""
        stream = entry[0]
        line_number, size = (origin, len(entry[1])) if isinstance(origin, int) else origin
        self.report.recount(stream, INPUT_STREAM)
        problem = unreadable_problem(worded(why, line_number, size))
        self.rejects.reject(INPUT_STREAM, f"line-{line_number}", [problem], {})

    def unreadable(self, line_number: int, why: str) -> None:
        """A line that is no Singer message may have been a record: never lose it silently."""
        seq = self.checkpoints.number()
        self.report.read(INPUT_STREAM)
        held = Held(INPUT_STREAM, f"line-{line_number}", [unreadable_problem(why)], {})
        self._reject_in_order(seq, held)

    def too_long(self, line_number: int, size: int, url: str | None = None) -> None:
        """A line over max_line_bytes (of stdin, or of a BATCH file at `url`): rejected by its
        number and size, as an unreadable line is (it may have been a record)."""
        why = too_long(line_number, size, self.settings.max_line_bytes, url)
        seq = self.checkpoints.number()
        self.report.read(INPUT_STREAM)
        problem = unreadable_problem(why, LINE_TOO_LONG)
        self._reject_in_order(seq, Held(INPUT_STREAM, f"line-{line_number}", [problem], {}))

    def state(self, value: Any) -> None:
        """A STATE message: written as soon as every record before it is finished."""
        self.checkpoints.state(value)
        self._take_mapped(wait=False)
        self.delivery.poll()
        self._write_ready_state()

    def _write_ready_state(self) -> None:
        if not self.checkpoints.pending_states:
            return
        unfinished = [self._chunk[0][0]] if self._chunk else []
        if self._chunks_out:
            unfinished.append(self._chunks_out[0][0][0])
        in_delivery = self.delivery.oldest_unfinished()
        if in_delivery is not None:
            unfinished.append(in_delivery)
        state = self.checkpoints.writable(min(unfinished, default=None))
        if state is not None:
            self._write_state(state)

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
            while self._chunks_out:
                self._take_mapped(wait=True)
            self.delivery.flush()
        self.delivery.poll()
        self._write_ready_state()

    def stop(self) -> None:
        """A stop was requested: requests make no more retries, nothing waits to send, and the
        mapping workers are waited for a few seconds at most."""
        self.delivery.abort()
        self.workers.hurry()

    def drain(self) -> None:
        """Map, send and settle everything read so far."""
        if self._chunk:
            self._send_chunk()
        while self._chunks_out:
            self._take_mapped(wait=True)
        self.delivery.drain()
        self._write_ready_state()

    def finish(self, outcome: str = "completed") -> None:
        """Deliver what is left, close files, and print the summary; then fail the run if it
        rejected more than it may (its rejects, STATE and summary are written first)."""
        self.drain()
        self._close(abandon=False)
        self._ended = True
        too_many = self.report.reject_limit_exceeded() if outcome == "completed" else None
        if too_many is not None:
            outcome = "failed: too many records rejected"
        self._summary(outcome)
        if too_many is not None:
            raise RejectLimitError(too_many)

    def fail(self, outcome: str) -> None:
        """Stop sending at once (nothing more is checkpointed) and print the summary; nothing
        to do when `finish` closed everything and only the summary file (or the reject limit)
        failed the run."""
        if self._closed or self._ended:
            return
        self._ended = True
        self._close(abandon=True)
        self._summary(outcome)

    def _on_outcome(self, outcome: Outcome, connection: str) -> None:
        """A request is finished: count it, reject what it refused, write the STATE it allows."""
        self.report.deliver(outcome.delivered, outcome.identifier_masks, connection=connection)
        self.report.already_delivered += outcome.already_delivered
        for item, problem in outcome.refused:
            self.rejects.reject(
                item.stream,
                item.event_id,
                [problem],
                decode_raw(item.record),
                connection=connection,
            )
        self._write_ready_state()

    def _on_abandoned(self, outcome: Outcome, connection: str) -> None:
        """A request acknowledged while the run was failing: counted (the ledger holds it),
        but no STATE and no reject (what it refused is sent again by the re-run)."""
        self.report.deliver(outcome.delivered, outcome.identifier_masks, connection=connection)
        self.report.already_delivered += outcome.already_delivered

    def _close(self, *, abandon: bool) -> None:
        self.workers.close(abandon=abandon)
        self.delivery.close(abandon=abandon)
        if self.ledger is not None:
            self.ledger.close()
        self.rejects.close()
        self._closed = True

    def _summary(self, outcome: str) -> None:
        if self._named:
            self.report.connection_requests(self.delivery.requests_by_connection())
        if self._flattened is not None:
            self.report.hints += self._flattened.hints()
        self.report.log_summary(outcome)
        if self.settings.summary_file:
            try:
                self.report.write_file(self.settings.summary_file, outcome)
            except OSError as exc:
                failed = summary_file_failed(exc, outcome, dry_run=self.settings.dry_run)
                if outcome != "completed":  # the run fails anyway, with its own message
                    self._logger.error("%s", failed)
                    return
                raise SummaryFileError(failed) from None


def _up_to_bytes(lines: Sequence[bytes], limit: int) -> tuple[Sequence[bytes], int]:
    """The first lines, up to and including the one that brings their size to `limit` (big
    lines: a chunk ends there), and their size."""
    total = sum(map(len, lines))
    if total < limit:  # most runs: one scan in C
        return lines, total
    total = 0
    for taken, line in enumerate(lines, 1):
        total += len(line)
        if total >= limit:
            return lines[:taken], total
    return lines, total


def _flattened_identifiers(settings: Settings) -> FlattenedIdentifiers | None:
    """Where a run with the SDK's flattening finds its identifiers (None: no flattening)."""
    options = settings.mapping_options
    if options.flattened_by is None:
        return None
    read = names_read(
        options.input_format, options.property_paths, INPUT_PROPERTIES, options.flattened_by
    )
    return FlattenedIdentifiers(options.flattened_by, read)


def _ledger(
    settings: Settings, run_id: str, logger: logging.Logger, connections: int
) -> Ledger | None:
    """The delivery ledger, opened (and pruned) now, so one that cannot be used fails the run
    before anything is sent. A dry run only reads it: it leaves out what a real run would."""
    if settings.ledger_url is None:
        return None
    from .ledger_open import open_ledger  # loaded by runs that keep a ledger only

    ledger = open_ledger(
        settings.ledger_url,
        run_id=run_id,
        retention_days=settings.ledger_retention_days,
        resend=settings.resend_delivered,
        read_only=settings.dry_run,
        pool_size=connections * settings.max_concurrent_requests + 1,
    )
    if ledger is not None:
        days = settings.ledger_retention_days
        logger.info(
            "Delivery ledger: %s%s; %s",
            ledger.description,
            " (read only: a dry run)" if settings.dry_run else "",
            f"{ledger.pruned} events delivered over {days} days ago pruned"
            if days and not settings.dry_run
            else "nothing pruned",
        )
        if settings.api_url != DEFAULT_API_URL and not settings.dry_run:
            logger.info(
                "Delivery ledger: api_url is not Spotify's; what it acknowledges counts as "
                "delivered to the connection, and a later run skips it (a sandbox rehearsal "
                "runs with ledger_url none)"
            )
    return ledger


def _transport(
    settings: Settings, connection: Connection, limit: ConcurrencyLimit, counts: RequestCounts
) -> Transport:
    if settings.dry_run:
        return DryRunFile(dry_run_path(settings.dry_run_file, connection.name), counts)
    return CapiClient(
        settings.api_url,
        connection.auth_token,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
        limit=limit,
        counts=counts,
    )
