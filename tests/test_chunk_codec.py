"""A chunk's records measured for depth: the bracket count that spares flat chunks the walk."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from target_spotify_conversions.chunk_codec import ChunkMapper, none_too_deep
from target_spotify_conversions.mapping import MappingOptions
from target_spotify_conversions.unreadable import MAX_DEPTH, TOO_DEEP, nests_deeper
from target_spotify_conversions.wire import JSON_CHUNK, MappedRecord, StreamChecks

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


def _mapped(chunk: list[tuple[str, dict[str, object], bool]]) -> list[MappedRecord]:
    mapper = ChunkMapper(OPTIONS)
    mapper.add_stream(ENCODER.encode(StreamChecks("s", {"type": "object"}, [], validate=True)))
    encoded = [(stream, msgspec.Raw(ENCODER.encode(rec)), deep) for stream, rec, deep in chunk]
    return msgspec.msgpack.decode(
        mapper.map(JSON_CHUNK, ENCODER.encode(encoded)), type=list[MappedRecord]
    )


def test_a_chunk_of_flat_records_is_not_walked_and_one_too_deep_among_them_is_found():
    flat = [("s", _flat(number), True) for number in range(499)]
    assert none_too_deep(ENCODER.encode(flat), len(flat))
    in_text = [("s", {**_flat(number), "content_name": "[{"}, True) for number in range(50)]
    assert not none_too_deep(ENCODER.encode(in_text), len(in_text))  # counted: measured

    for depth, expected in ((MAX_DEPTH - 1, ""), (MAX_DEPTH, TOO_DEEP)):
        results = _mapped([*flat, ("s", _chain(depth, "deep"), True)])
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


@settings(max_examples=300, deadline=None)
@given(_records())
def test_the_bracket_count_never_passes_a_chunk_holding_a_record_too_deep(
    records: list[dict[str, object]],
) -> None:
    chunk = [("s", record, True) for record in records]
    if none_too_deep(ENCODER.encode(chunk), len(chunk)):
        assert not any(nests_deeper(record, MAX_DEPTH - 1) for record in records)
