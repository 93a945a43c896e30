"""The run's record and STATE paths, in-process: a STATE is written only once every record
before it is delivered or rejected, wherever those records are (open chunk, workers, requests)."""

from __future__ import annotations

import json
import logging

import pytest

from target_spotify_conversions.pipeline import Pipeline, RejectLimitError
from target_spotify_conversions.problems import Problem
from target_spotify_conversions.settings import Settings
from tests.harness import purchase, target_config


def pipeline(tmp_path, fake, states: list, **settings) -> Pipeline:
    config = target_config(fake.url, **settings)
    config["rejects_file"] = str(tmp_path / "rejects.jsonl")
    config.setdefault("ledger_url", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    config.setdefault("batch_wait_limit_seconds", 3600)
    return Pipeline(Settings.from_config(config), logging.getLogger("test"), states.append)


@pytest.mark.parametrize("processes", [0, 2])
def test_a_state_waits_for_the_request_holding_the_records_before_it(fake, tmp_path, processes):
    fake.configure(latency=0.3)
    states: list = []
    run = pipeline(tmp_path, fake, states, events_per_request=5, mapping_processes=processes)
    for i in range(5):
        run.process(purchase(i), "conversions")
    run.state({"at": 5})
    assert states == [], "records 0-4 are still being mapped or sent"
    run.drain()
    assert states == [{"at": 5}]
    run.finish()
    assert len(fake.accepted_ids()) == 5


def test_a_state_waits_for_records_in_the_open_chunk(fake, tmp_path):
    states: list = []
    run = pipeline(tmp_path, fake, states, events_per_request=100, mapping_processes=0)
    run.process(purchase(1), "conversions")
    run.state({"at": 1})
    run.idle()  # the record waits for a fuller request: batch_wait_limit_seconds is an hour
    assert states == []
    run.drain()
    assert states == [{"at": 1}]
    run.finish()


def test_a_state_after_rejected_records_only_is_written_at_once(fake, tmp_path):
    states: list = []
    run = pipeline(tmp_path, fake, states, mapping_processes=0)
    bad = [Problem("schema_validation", "record fails the stream schema")]
    run.process(purchase(1), "conversions", bad)
    run.state({"at": 1})
    assert states == [{"at": 1}]
    with pytest.raises(RejectLimitError):  # its only record was rejected: the run fails
        run.finish()
    assert fake.requests == []
    assert (tmp_path / "rejects.jsonl").read_text().count("\n") == 1


def test_only_the_newest_ready_state_is_written(fake, tmp_path):
    states: list = []
    run = pipeline(tmp_path, fake, states, events_per_request=2, mapping_processes=0)
    for i in range(4):
        run.process(purchase(i), "conversions")
        run.state({"at": i + 1})
    run.drain()
    assert states[-1] == {"at": 4}
    assert states == sorted(states, key=lambda s: s["at"]), "never an older STATE after a newer"
    run.finish()


def test_a_repeated_schema_is_not_sent_to_the_workers_again(fake, tmp_path, monkeypatch):
    from target_spotify_conversions.wire import StreamChecks

    run = pipeline(tmp_path, fake, [], mapping_processes=0)
    sent: list[StreamChecks] = []
    monkeypatch.setattr(run.workers, "add_stream", sent.append)
    schema = {"type": "object", "properties": {"email": {"type": ["string", "null"]}}}
    checks = StreamChecks("conversions", schema, ["$event_id"], True)
    run.add_raw_stream(checks)
    run.add_raw_stream(StreamChecks("conversions", schema, ["$event_id"], True))  # repeated
    changed = StreamChecks("conversions", schema, ["email"], True)
    run.add_raw_stream(changed)
    assert sent == [checks, changed]
    run.finish()


def _line(record: dict, stream: str = "conversions") -> bytes:
    import json

    return json.dumps({"type": "RECORD", "stream": stream, "record": record},
                      separators=(",", ":")).encode()


@pytest.mark.parametrize("processes", [0, 2])
def test_whole_lines_go_out_in_chunks_numbered_as_read(
    fake, tmp_path, monkeypatch, processes
):
    import msgspec

    from target_spotify_conversions import pipeline as pipeline_module
    from target_spotify_conversions.wire import StreamChecks
    from target_spotify_conversions.worker_pool import _encode_chunk

    states: list = []
    run = pipeline(tmp_path, fake, states, events_per_request=4, mapping_processes=processes)
    run.add_raw_stream(StreamChecks("conversions", {"type": "object"}, [], True))
    submitted: list[list[str]] = []
    submit = run.workers.submit

    def recording(chunk):
        kinds = ["line" if type(entry[1]) is bytes else "raw" for entry in chunk]
        submitted.append([_encode_chunk(chunk)[0].decode(), *kinds])
        submit(chunk)

    monkeypatch.setattr(run.workers, "submit", recording)
    big = "x" * 3000
    monkeypatch.setattr(pipeline_module, "CHUNK_BYTES", 8000)  # about two big lines a chunk
    run.process_lines("conversions", [_line(purchase(i)) for i in range(6)], 1)
    run.process_raw("conversions", msgspec.Raw(msgspec.json.encode(purchase(6))), (7, 10))
    bigs = [_line(purchase(i, content_name=big)) for i in range(7, 11)]
    run.process_lines("conversions", bigs, 8)
    run.state({"at": 11})
    broken = b'{"type":"RECORD","stream":"conversions","record":{"$event_id":"cut"'
    run.process_lines("conversions", [broken, _line(purchase(11))], 12)
    run.finish()
    # Four lines a chunk, lines only as a LINES_CHUNK, pickled among other entries; a chunk
    # of big lines ends at the line that brings it to CHUNK_BYTES.
    assert submitted == [
        ["L", *["line"] * 4],
        ["P", "line", "line", "raw", "line"],
        ["L", *["line"] * 3],
        ["L", *["line"] * 2],
    ]
    assert states == [{"at": 11}]
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(12)}
    assert run.report.records_read == 13  # the unreadable line among them
    [reject] = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert reject["event_id"] == "line-12"
    assert reject["reasons"] == [
        f"unreadable_input_line: input line 12 is not valid UTF-8 JSON ({len(broken)} bytes)"
    ]


@pytest.mark.parametrize("processes", [0, 2])
def test_a_line_too_long_is_rejected_in_its_place_among_the_records(fake, tmp_path, processes):
    from target_spotify_conversions.wire import StreamChecks

    run = pipeline(tmp_path, fake, [], events_per_request=50, mapping_processes=processes,
                   max_line_bytes=1000)
    run.add_raw_stream(StreamChecks("conversions", {"type": "object"}, [], True))
    run.process_lines("conversions", [_line(purchase(1)), _line(purchase(2, currency="??"))], 1)
    run.too_long(3, 5000)  # while the records read before it are still being mapped
    run.process_lines("conversions", [_line(purchase(4, currency="??"))], 4)
    run.finish()
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["event_id"] for r in rejects] == ["ord-2", "line-3", "ord-4"]
    assert rejects[1]["reasons"] == [
        "input_line_too_long: input line 3 is 5000 bytes long, over the limit of 1000 bytes "
        "(max_line_bytes)"
    ]
    assert fake.accepted_ids() == {"ord-1"}


def test_lines_after_rejections_held_in_the_chunk_start_a_chunk_of_their_own(
    fake, tmp_path, monkeypatch
):
    from target_spotify_conversions.wire import StreamChecks

    run = pipeline(tmp_path, fake, [], events_per_request=4, mapping_processes=0)
    run.add_raw_stream(StreamChecks("conversions", {"type": "object"}, [], True))
    sizes: list[int] = []
    submit = run.workers.submit
    monkeypatch.setattr(run.workers, "submit", lambda chunk: (sizes.append(len(chunk)),
                                                              submit(chunk)))
    run.process_lines("conversions", [_line(purchase(0))], 1)
    bad = [Problem("schema_validation", "record fails the stream schema")]
    for i in range(1, 7):  # held behind the line still in the open chunk: 7 entries of 4
        run.process(purchase(i), "conversions", bad)
    run.process_lines("conversions", [_line(purchase(i)) for i in range(7, 27)], 8)
    run.finish()
    assert sizes == [1, 4, 4, 4, 4, 4]
    assert fake.accepted_ids() == {f"ord-{i}" for i in (0, *range(7, 27))}
