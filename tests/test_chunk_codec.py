"""Whole RECORD lines read in the worker as the reader would read them, measured for depth by
a bracket count that spares flat chunks the walk; raw and checked records beside them."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from target_spotify_conversions.chunk_codec import (
    ChunkMapper,
    decode_raw,
    no_line_too_deep,
)
from target_spotify_conversions.mapping import MappingOptions
from target_spotify_conversions.unreadable import (
    AMBIGUOUS,
    MAX_DEPTH,
    NOT_JSON,
    TOO_DEEP,
    nests_deeper,
)
from target_spotify_conversions.wire import JSON_CHUNK, LINES_CHUNK, MappedRecord, StreamChecks

OPTIONS = MappingOptions(phone_default_country="US", default_action_source="WEB")
ENCODER = msgspec.json.Encoder()


def _chain(depth: int, event_id: str) -> dict[str, object]:
    """A record nesting `depth` objects and lists, itself included."""
    inner: object = {}
    for level in range(depth - 2):
        inner = [inner] if level % 2 else {"a": inner}
    return {"$event_id": event_id, "a": inner}


def _flat(number: int) -> dict[str, object]:
    return {
        "$event_id": f"e-{number}",
        "spotify_event_name": "PRODUCT",
        "$event_time": "2026-11-12T04:00:00.754Z",
        "email": f"person{number}@example.com",
        "content_name": "Silk Slip Dress",
    }


def _mapper() -> ChunkMapper:
    mapper = ChunkMapper(OPTIONS)
    checks = StreamChecks("s", {"type": "object"}, [], validate=True, metadata=["_sdc_batched_at"])
    mapper.add_stream(ENCODER.encode(checks))
    return mapper


def _mapped(chunk: list[tuple[str, dict[str, object], bool]]) -> list[MappedRecord]:
    encoded = [(stream, msgspec.Raw(ENCODER.encode(rec)), deep) for stream, rec, deep in chunk]
    return msgspec.msgpack.decode(
        _mapper().map(JSON_CHUNK, ENCODER.encode(encoded)), type=list[MappedRecord]
    )


def _mapped_lines(lines: list[bytes], stream: str = "s") -> list[MappedRecord]:
    payload = msgspec.msgpack.encode([(stream, line) for line in lines])
    return msgspec.msgpack.decode(_mapper().map(LINES_CHUNK, payload), type=list[MappedRecord])


def _line(record: object, **envelope: object) -> bytes:
    return ENCODER.encode({"type": "RECORD", "stream": "s", "record": record, **envelope})


def _lines_payload(lines: list[bytes]) -> bytes:
    return msgspec.msgpack.encode([("s", line) for line in lines])


def test_a_chunk_of_flat_lines_is_not_walked_and_one_too_deep_among_them_is_found():
    flat = [_line(_flat(number)) for number in range(499)]
    assert no_line_too_deep(_lines_payload(flat), len(flat))
    in_text = [_line({**_flat(number), "content_name": "[{"}) for number in range(50)]
    assert not no_line_too_deep(_lines_payload(in_text), len(in_text))  # counted: measured

    for depth, expected in ((MAX_DEPTH - 1, ""), (MAX_DEPTH, TOO_DEEP)):  # the record's depth
        results = _mapped_lines([*flat, _line(_chain(depth, "deep"))])
        assert [result.unreadable for result in results] == [""] * 499 + [expected]
        assert all(result.body is not None for result in results[:499])


@st.composite
def _records(draw: st.DrawFn) -> list[dict[str, object]]:
    """Flat records, some with a few nested values, and at times one nesting near the limit."""
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text("ab{[]}", max_size=4),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text("xy", max_size=2), inner, max_size=3),
        max_leaves=6,
    )
    records = draw(
        st.lists(st.dictionaries(st.text("pq", max_size=3), values, max_size=4), max_size=40)
    )
    if draw(st.booleans()):
        depth = draw(st.integers(MAX_DEPTH - 4, MAX_DEPTH + 2))
        records.insert(draw(st.integers(0, len(records))), _chain(depth, "chain"))
    return records or [{}]


def test_whole_lines_map_as_their_records_do_raw():
    records = [
        _flat(1),
        {**_flat(2), "_sdc_batched_at": "2026-01-01"},  # the SDK's metadata: removed
        {"$event_id": "e-3", "spotify_event_name": "PRODUCT"},  # no identifier: rejected
        {**_flat(4), "amount": 12.5, "currency": "EUR", "spotify_event_name": "PURCHASE"},
    ]
    lines = [_line(record, time_extracted="2026-01-01T00:00:00Z", version=3) for record in records]
    as_lines = _mapped_lines(lines)
    as_raw = _mapped([("s", record, True) for record in records])
    assert as_lines == as_raw
    assert [result.body is not None for result in as_lines] == [True, True, False, True]
    assert b"_sdc_" not in (as_lines[1].body or b"")
    assert decode_raw(lines[2]) == records[2]  # what the rejects file reads back


def test_a_whole_line_the_reader_would_refuse_is_unreadable_and_spoils_no_other():
    good = _line(_flat(1))
    cases = {
        b'{"type":"RECORD","stream":"s","record":{"$event_id":"e-9"': NOT_JSON,  # cut short
        b'{"type":"RECORD","stream":"s","record":{"amount":NaN}}': NOT_JSON,
        b'{"type":"RECORD","stream":"s","record":{}} {}': NOT_JSON,  # two values
        b'{"type":"RECORD","stream":"s","record":{},"type":"STATE"}': AMBIGUOUS,
        b'{"type":"RECORD","stream":"s","record":{},"stream":"t"}': AMBIGUOUS,
        b'{"type":"RECORD","stream":"s","record":{},"record":[1]}': AMBIGUOUS,
        _line(_chain(MAX_DEPTH - 1, "deepest")): "",
        _line(_chain(MAX_DEPTH, "deep")): TOO_DEEP,
        _line({}, extra=_chain(MAX_DEPTH, "env")): TOO_DEEP,  # beside its record
        _line({}, extra=_chain(MAX_DEPTH - 1, "env")): "",
        b'{"type":"RECORD","stream":"s","record":' + b"[" * 5000 + b"]" * 5000 + b"}": TOO_DEEP,
    }
    for line, expected in cases.items():
        results = _mapped_lines([good, line, good])
        assert [result.unreadable for result in results] == ["", expected, ""], line[:80]
        assert results[0].body is not None
        assert results[2].body is not None


@st.composite
def _lines(draw: st.DrawFn) -> list[bytes]:
    """RECORD lines of flat and nested records, at times one nesting near the limit in its
    record or beside it."""
    records = draw(_records())
    lines = [_line(record) for record in records]
    if draw(st.booleans()):
        depth = draw(st.integers(MAX_DEPTH - 4, MAX_DEPTH + 2))
        lines.insert(draw(st.integers(0, len(lines))), _line({}, extra=_chain(depth, "env")))
    return lines


@settings(max_examples=300, deadline=None)
@given(_lines(), st.sampled_from(["s", "[{", "{{[["]), _records(), st.booleans())
def test_the_bracket_count_never_passes_a_chunk_holding_a_line_too_deep(
    lines: list[bytes], stream: str, others: list[dict[str, object]], pickled: bool
) -> None:
    """As a LINES_CHUNK, and pickled among records of the SDK side (a mixed chunk)."""
    import pickle

    entries: list[tuple[str, object]] = [(stream, line) for line in lines]
    if pickled:
        entries += [(stream, record) for record in others]
        payload = pickle.dumps(entries[::-1], protocol=pickle.HIGHEST_PROTOCOL)
    else:
        payload = msgspec.msgpack.encode(entries)
    if no_line_too_deep(payload, len(lines)):
        assert not any(nests_deeper(msgspec.json.decode(line), MAX_DEPTH) for line in lines)


def test_lines_among_other_entries_map_as_they_do_alone():
    import pickle

    from target_spotify_conversions.wire import PICKLED_CHUNK

    records = [_flat(number) for number in range(4)]
    chunk = [
        ("s", _line(records[0])),
        ("s", msgspec.Raw(ENCODER.encode(records[1])), True),  # a raw record
        ("s", _line(_chain(MAX_DEPTH, "deep"))),
        ("s", dict(records[2])),  # checked by the SDK side
        ("s", b'{"type":"RECORD","stream":"s","record":{'),  # not JSON
        ("s", _line(records[3], stream="t")),  # another stream after its start
    ]
    results = msgspec.msgpack.decode(
        _mapper().map(PICKLED_CHUNK, pickle.dumps(chunk)), type=list[MappedRecord]
    )
    assert [result.unreadable for result in results] == ["", "", TOO_DEEP, "", NOT_JSON, AMBIGUOUS]
    alone = _mapped_lines([_line(record) for record in records[:3]])
    assert [results[0].body, results[1].body, results[3].body] == [r.body for r in alone]
