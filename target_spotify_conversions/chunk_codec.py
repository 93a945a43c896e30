"""A chunk of records in, their results out: what a mapping worker runs for each record.

A chunk holds (stream, record) for a record the SDK side has checked, or (stream, raw, True)
for a BATCH file's line, a record left undecoded (msgspec.Raw; its depth was bounded as it was
read): that one is decoded, cleared of the SDK's metadata, checked and mapped here. A
LINES_CHUNK holds (stream, line): a whole RECORD line the reader only recognised by its start
(reader.SafeReader._take_lines), decoded and checked here as the reader would; a pickled chunk
may hold such lines among its other entries. Results are msgpack-encoded MappedRecords, in the
chunk's order.
"""

from __future__ import annotations

import datetime as dt
import decimal
import pickle
from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec

from .event_time import UTC
from .mapping import EventMapper, Mapped, MappingOptions, Rejected, Skipped, identifier_mask
from .routing import router_for
from .unreadable import AMBIGUOUS, MAX_DEPTH, NOT_JSON, TOO_DEEP, brackets, nests_deeper
from .validation import RecordChecks
from .wire import LINES_CHUNK, PICKLED_CHUNK, MappedRecord, StreamChecks

_JSON_ENCODER = msgspec.json.Encoder(decimal_format="number")  # event bodies, rejected records
_CHUNK_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)
_ENTRIES_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_LINES_DECODER = msgspec.msgpack.Decoder(list[tuple[str, bytes]])
_RESULT_ENCODER = msgspec.msgpack.Encoder()
# What a full decoding refuses: in a whole line, anything that is not JSON (invalid UTF-8
# included); in a BATCH line's record, skipped over as it was read, an integer of over 4,300
# digits or an exponent no Decimal holds.
_UNDECODABLE = (msgspec.DecodeError, decimal.InvalidOperation)


def _chunk(kind: bytes, payload: bytes) -> list[Sequence[Any]]:
    """A chunk's entries: tuples when pickled, lists when decoded from JSON."""
    if kind == PICKLED_CHUNK:
        chunk: list[Sequence[Any]] = pickle.loads(payload)  # noqa: S301 - our own process wrote it
        return chunk
    return _CHUNK_DECODER.decode(payload)  # type: ignore[no-any-return]


class ChunkMapper:
    """An EventMapper (and its caches) for the whole run, and the checks of raw records."""

    def __init__(self, options: MappingOptions) -> None:
        self._mapper = EventMapper(options)
        self._router = router_for(options)
        self._checks: dict[str, RecordChecks] = {}
        self._metadata: dict[str, tuple[str, ...]] = {}

    def add_stream(self, payload: bytes) -> None:
        spec = msgspec.json.decode(payload, type=StreamChecks)
        self._checks[spec.stream] = RecordChecks(
            spec.schema, spec.key_properties, validate=spec.validate, datelike=spec.datelike
        )
        self._metadata[spec.stream] = tuple(spec.metadata)

    def map(self, kind: bytes, payload: bytes) -> bytes:
        """Map an encoded chunk and encode the results, in the chunk's order."""
        now = dt.datetime.now(UTC)  # one clock reading a chunk: its records arrived together
        if kind == LINES_CHUNK:
            lines = _LINES_DECODER.decode(payload)
            measure = not no_line_too_deep(payload, len(lines))
            return _RESULT_ENCODER.encode(
                [self._map_line(stream, line, now, measure) for stream, line in lines]
            )
        try:
            chunk = _chunk(kind, payload)
        except _UNDECODABLE:  # one raw record spoils the chunk: decode entry by entry
            return _RESULT_ENCODER.encode(
                [self._map_one(entry, now) for entry in _ENTRIES_DECODER.decode(payload)]
            )
        if kind == PICKLED_CHUNK:  # lines may be among its entries (worker_pool._encode_chunk)
            whole = sum(type(entry[1]) is bytes for entry in chunk)
            measure = bool(whole) and not no_line_too_deep(payload, whole)
            return _RESULT_ENCODER.encode(
                [
                    self._map_line(entry[0], entry[1], now, measure)
                    if type(entry[1]) is bytes
                    else self._map_one(entry, now)
                    for entry in chunk
                ]
            )
        return _RESULT_ENCODER.encode([self._map_one(entry, now) for entry in chunk])

    def _map_one(self, entry: Sequence[Any] | msgspec.Raw, now: dt.datetime) -> MappedRecord:
        """`entry`: a chunk entry (a list once decoded from JSON), or its raw JSON."""
        try:
            stream, record, raw = _decoded(entry)
        except _UNDECODABLE:
            return MappedRecord("", None, (), (), unreadable=NOT_JSON)
        return self._mapped(stream, record, raw, now)

    def _map_line(self, stream: str, line: bytes, now: dt.datetime, measure: bool) -> MappedRecord:
        """A whole RECORD line of `stream`, as the reader would read it: not JSON, nested too
        deeply (the whole message, as the reader measures a line), or naming another type or stream,
        or a record that is no object, after its start (a name given twice; the last wins, as
        in the reader, so a repeat that agrees with the start is read as it), it is an
        unreadable line. `measure` False: no_line_too_deep holds for its chunk."""
        try:
            message = _CHUNK_DECODER.decode(line)
        except _UNDECODABLE:
            return MappedRecord("", None, (), (), unreadable=NOT_JSON)
        except RecursionError:  # deeper than the decoder goes: far too deep
            return MappedRecord("", None, (), (), unreadable=TOO_DEEP)
        if measure and nests_deeper(message, MAX_DEPTH):
            return MappedRecord("", None, (), (), unreadable=TOO_DEEP)
        record = message.get("record")  # an object: the line starts with "{"
        if (
            type(record) is not dict
            or message.get("type") != "RECORD"
            or message.get("stream") != stream
        ):
            return MappedRecord("", None, (), (), unreadable=AMBIGUOUS)
        return self._mapped(stream, record, True, now)

    def _mapped(
        self, stream: str, record: dict[str, Any], raw: bool, now: dt.datetime
    ) -> MappedRecord:
        """A decoded record's result; `raw`: not checked yet (the SDK side checks the others)."""
        if raw:  # checked here, as the SDK side checks the others
            for key in self._metadata[stream]:  # as the SDK's path does first
                record.pop(key, None)
        route = self._router.route(record, stream)
        connection = route.connection or ""
        if raw:
            problems = self._checks[stream].problems(record)
            if problems:
                event_id = self._mapper.event_id(record, stream)
                redacted = self._kept(record, event_id)
                problems += [route.problem] if route.problem else []
                return MappedRecord(
                    event_id, None, (), tuple(problems), kept=redacted, connection=connection
                )
        result = self._mapper.map(record, stream, now)
        if route.problem is not None and not isinstance(result, Skipped):
            if isinstance(result, Mapped):  # a good event with nowhere to go
                result = Rejected(result.event_id, [], result.warnings)
            result.reasons.append(route.problem)
        if isinstance(result, Mapped):
            body = _JSON_ENCODER.encode(result.event)
            mask = identifier_mask(result.event["user_data"])
            return MappedRecord(
                result.event_id,
                body,
                tuple(result.warnings),
                (),
                mask,
                connection=connection,
                event_time=result.event["event_time"],
            )
        if isinstance(result, Skipped):
            return MappedRecord(result.event_id, None, (), (), skipped=True)
        kept = self._kept(record, result.event_id) if raw else None
        return MappedRecord(
            result.event_id,
            None,
            tuple(result.warnings),
            tuple(result.reasons),
            kept=kept,
            connection=connection,
        )

    def _kept(self, record: Mapping[str, Any], event_id: str) -> bytes:
        """A raw record decodes here exactly as in the reading process (decode_raw): its
        redacted form is the same bytes either side. (A record from the SDK side may hold
        values JSON does not carry, such as datetimes: that side redacts its own.)"""
        return _JSON_ENCODER.encode(self._mapper.redact(record, event_id))


def _decoded(entry: Sequence[Any] | msgspec.Raw) -> tuple[str, dict[str, Any], bool]:
    """(stream, record, whether it came raw) of an entry, decoding what is still raw (an entry
    of a chunk decoded one by one; a record of a pickled chunk)."""
    # A list once decoded from a chunk's JSON, a tuple when pickled or mapped inline.
    parts: Sequence[Any] = _CHUNK_DECODER.decode(entry) if isinstance(entry, msgspec.Raw) else entry
    record = parts[1]
    if isinstance(record, msgspec.Raw):
        record = _CHUNK_DECODER.decode(record)
    return cast("str", parts[0]), cast("dict[str, Any]", record), len(parts) > 2


def no_line_too_deep(payload: bytes, lines: int) -> bool:
    """Whether no line of a LINES_CHUNK of `lines` RECORD lines can nest deeper than the reader
    allows a line (MAX_DEPTH; its record then at most MAX_DEPTH - 1), by counting brackets:
    each line starts with two of its own ("{" of its message, then of its record), so what the
    others leave bounds any one line's brackets, and they bound its depth. Brackets anywhere
    else in the payload (a length byte of msgpack's or pickle's framing may read as one; the
    other entries of a pickled chunk) only make the bound stricter. Flat
    lines (most input) pass with two C scans of the chunk instead of a walk over each line's
    values (5% of a worker's time)."""
    return brackets(payload) - 2 * lines <= MAX_DEPTH - 2


def decode_raw(record: Mapping[str, Any] | msgspec.Raw | bytes) -> Mapping[str, Any]:
    """A record as the mapping reads it, whether it came decoded, raw, or as its whole RECORD
    line (bytes: read only once a worker found it readable), for the rejects file."""
    if isinstance(record, msgspec.Raw):
        decoded: Mapping[str, Any] = _CHUNK_DECODER.decode(record)
        return decoded
    if isinstance(record, bytes):
        line: Mapping[str, Any] = _CHUNK_DECODER.decode(record)["record"]
        return line
    return record
