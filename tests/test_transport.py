"""The request body format and the dry-run file, without delivery around them."""

from __future__ import annotations

import json

from target_spotify_conversions.transport import (
    MAX_BODY_BYTES,
    Answer,
    DryRunFile,
    body_of,
    envelope_size,
)

EVENTS = [b'{"event_id":"e-1"}', b'{"event_id":"e-2"}']


def test_a_body_wraps_the_encoded_events_in_the_api_envelope():
    body = json.loads(body_of("conn-1", EVENTS))
    assert body == {
        "conversion_events": {
            "capi_connection_id": "conn-1",
            "events": [{"event_id": "e-1"}, {"event_id": "e-2"}],
        }
    }


def test_the_envelope_size_plus_events_and_commas_is_the_body_size():
    size = envelope_size("conn-1") + sum(len(e) for e in EVENTS) + len(EVENTS) - 1
    assert size == len(body_of("conn-1", EVENTS))
    assert envelope_size("conn-1") < MAX_BODY_BYTES


def test_only_2xx_answers_are_ok():
    assert Answer(200, "").ok
    assert Answer(204, "").ok
    assert not Answer(400, "").ok
    assert not Answer(413, "").ok


def test_the_dry_run_file_writes_one_body_a_line_in_a_new_directory(tmp_path):
    path = tmp_path / "new" / "dry.jsonl"
    transport = DryRunFile(str(path))
    assert transport.post(body_of("c", EVENTS[:1]), 1).ok
    assert transport.post(body_of("c", EVENTS), 2).ok
    transport.close()
    lines = path.read_bytes().splitlines()
    assert lines == [body_of("c", EVENTS[:1]), body_of("c", EVENTS)]
    assert transport.counts.requests == 2
    assert transport.counts.retries == 0
