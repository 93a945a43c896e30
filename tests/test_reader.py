"""The read loop: a quiet tap does not hold events or STATE, and input is read as bytes."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time

import pytest

from target_spotify_conversions.reader import raw_record, raw_records
from tests.harness import (
    TARGET_BIN,
    Run,
    assert_no_leaks,
    purchase,
    singer_lines,
    start_target,
    target_config,
)


def _stdout_lines(process: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The target's stdout, line by line, without blocking the test."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def test_a_quiet_tap_gets_its_events_and_state_out_within_the_wait_limit(fake, tmp_path):
    config = target_config(fake.url, events_per_request=500)
    process = start_target(tmp_path / "run", config)
    assert process.stdin is not None
    states, pump = _stdout_lines(process)
    lines = singer_lines([purchase(i) for i in range(100)], state_every=100)[:-1]
    started = time.monotonic()
    process.stdin.write("\n".join(lines) + "\n")
    process.stdin.flush()  # and the tap goes quiet, its output still open

    state = json.loads(states.get(timeout=30))
    seconds = time.monotonic() - started
    print(f"\n[idle-tap] events=100, state_after_s={seconds:.1f}")
    assert state == {"position": 100}
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(100)}, "delivered before STATE"
    assert process.poll() is None, "the target still waits for the tap"

    process.stdin.write(json.dumps({"type": "STATE", "value": {"position": 101}}) + "\n")
    process.stdin.close()
    process.wait(timeout=60)
    pump.join(timeout=10)
    assert process.stderr is not None
    stderr = process.stderr.read()
    stdout = "".join(states.get_nowait() for _ in range(states.qsize()))
    assert process.returncode == 0, stderr[-2000:]
    assert json.loads(stdout.splitlines()[-1]) == {"position": 101}
    assert "summary: events delivered: 100" in stderr
    assert_no_leaks(Run(0, stdout, stderr, tmp_path / "run", config), lines)


def test_a_line_that_is_not_utf8_is_rejected_from_input_file_as_from_stdin(fake, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = target_config(fake.url)
    (workdir / "config.json").write_text(json.dumps(config))
    lines = singer_lines([purchase(1), purchase(2)])
    bad = b'{"type": "RECORD", "stream": "conversions", "record": {"event": "caf\xe9"}}'
    data = b"\n".join([line.encode() for line in lines] + [bad]) + b"\n"
    (workdir / "input.jsonl").write_bytes(data)

    process = subprocess.run(
        [TARGET_BIN, "--config", "config.json", "--input", "input.jsonl"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    run = Run(process.returncode, process.stdout, process.stderr, workdir, config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.count("rejected unreadable_input_line") == 1
    assert [r["event_id"] for r in run.rejects()] == ["line-4"]
    assert fake.accepted_ids() == {"ord-1", "ord-2"}


ODD_LINES = [
    b'{"$event_id": "e-1", "email": "a@example.com"}',
    b'  {"$event_id": "e-2"}  ',  # spaces around the object
    b"[1, 2]",  # JSON, but no object
    b'"text"',
    b'{"$event_id": "e-3"',  # cut short
    b'{"a": 1} {"b": 2}',  # two values on one line
    b"",
    b"   ",
    b'{"deep": ' + b"[" * 150 + b"]" * 150 + b"}",  # too deep to stay raw
    b'{"$event_id": "e-4", "_sdc_extracted_at": "2024-01-01"}',  # SDK metadata to remove
    "{\"name\": \"Zoë\"}".encode(),  # not ASCII
    b'{"amount": 1' + b"0" * 5000 + b"}",
]


@pytest.mark.parametrize("order", [1, -1])
def test_raw_records_of_a_block_are_raw_record_of_each_line(order):
    # A BATCH block is checked with the scans made once for its whole text: each line must
    # come out as it would on its own, whatever the other lines of its block hold.
    lines = ODD_LINES[::order]
    for block in (lines, [line for line in lines if line.isascii() and b"_sdc_" not in line]):
        text = b"\n".join(block) + b"\n"
        got = [None if raw is None else bytes(raw) for raw in raw_records(text, block)]
        expected = [None if (raw := raw_record(line)) is None else bytes(raw) for line in block]
        assert got == expected
        assert got[block.index(ODD_LINES[0])] == ODD_LINES[0]


def test_a_message_type_that_looks_like_an_email_is_not_quoted():
    import pytest
    from singer_sdk.singerlib.exceptions import InvalidInputLine

    from target_spotify_conversions.reader import SafeReader

    reader = SafeReader()
    with pytest.raises(InvalidInputLine) as caught:
        reader._unknown_message({"type": "alice.smith@example.com"})
    assert str(caught.value).endswith("unknown message type a string of 23 characters")
    with pytest.raises(InvalidInputLine) as caught:
        reader.assert_line_requires({"type": "+1 415 555 0123"}, {"type", "stream"})
    assert str(caught.value) == "a message of type a string of 15 characters lacks stream"


def _read_through(tmp_path, lines: list[bytes], raw_streams: set[str]):
    """Run SafeReader over `lines` from a file (read by its descriptor, as stdin is); what went
    on whole as runs, and what the SDK's loop dispatched."""
    from target_spotify_conversions.reader import SafeReader

    path = tmp_path / "input.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    reader = SafeReader()
    reader.raw_streams = set(raw_streams)
    runs: list[tuple[str, list[bytes], int]] = []
    dispatched: list[tuple[str, int]] = []
    reader.on_raw_lines = lambda stream, run, first: runs.append((stream, list(run), first))
    reader.on_unreadable = lambda number, why: dispatched.append(("unreadable", number))
    callbacks = {
        kind: (lambda message, kind=kind: dispatched.append((kind, reader.line_number)))
        for kind in ("RECORD", "STATE", "SCHEMA")
    }
    with path.open("rb") as source:
        stats = reader.process_lines(source, callbacks)
    return runs, dispatched, stats


def _compact(stream: str, record: dict[str, object]) -> bytes:
    return json.dumps(
        {"type": "RECORD", "stream": stream, "record": record},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def test_runs_of_record_lines_go_on_whole_in_both_forms_taps_write(tmp_path):
    spaced = [json.dumps({"type": "RECORD", "stream": "s", "record": {"n": n}}).encode()
              for n in range(3)]
    compact = [_compact("s", {"n": n}) for n in range(3, 5)]
    state = json.dumps({"type": "STATE", "value": {"at": 1}}).encode()
    other = _compact("other", {"n": 9})
    lines = [*spaced, *compact, state, compact[0], other, compact[1]]
    runs, dispatched, stats = _read_through(tmp_path, lines, {"s"})
    # Each run is of one stream and one form, numbered as read; the rest is read here.
    assert runs == [
        ("s", spaced, 1),
        ("s", compact, 4),
        ("s", [compact[0]], 7),
        ("s", [compact[1]], 9),
    ]
    assert dispatched == [("STATE", 6), ("RECORD", 8)]  # "other" is not a raw stream
    assert stats["RECORD"] == 8


def test_lines_the_runs_do_not_recognise_go_on_whole_one_by_one(tmp_path):
    escaped = b'{"type":"RECORD","stream":"\\u0073","record":{"n":1}}'  # "s", with an escape
    extra_space = b'{"type":"RECORD", "stream":"s","record":{"n":2}}'
    record_first = b'{"record":{"n":3},"type":"RECORD","stream":"s"}'
    a_state = b'{"stream":"s","type":"RECORD","record":{},"type":"STATE","value":{}}'
    lines = [escaped, extra_space, record_first, _compact("s", {"n": 4}), a_state]
    runs, dispatched, _ = _read_through(tmp_path, lines, {"s"})
    # Their type and stream are decoded here (the last of each), the rest by a worker.
    assert runs == [("s", [line], number) for number, line in enumerate(lines[:4], 1)]
    assert dispatched == [("STATE", 5)]

    # A read that is not ASCII goes on whole too (the worker's decoder checks its UTF-8), and
    # so does a stream named in UTF-8; a name that is no UTF-8 is read here (it is no JSON).
    accented = _compact("s", {"name": "Zoë"})
    other = _compact("é", {"n": 6})
    broken = b'{"type":"RECORD","stream":"\xe9","record":{"n":7}}'
    lines = [_compact("s", {"n": 5}), accented, other, broken]
    runs, dispatched, _ = _read_through(tmp_path, lines, {"s", "é"})
    assert runs == [("s", lines[:2], 1), ("é", [other], 3)]
    assert dispatched == [("unreadable", 4)]


def test_a_schema_read_between_runs_applies_to_the_lines_after_it(tmp_path):
    from target_spotify_conversions.reader import SafeReader

    schema = json.dumps({"type": "SCHEMA", "stream": "t", "schema": {}}).encode()
    lines = [_compact("t", {"n": 1}), schema, _compact("t", {"n": 2}), _compact("t", {"n": 3})]
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    reader = SafeReader()
    runs: list[tuple[str, int, int]] = []
    records: list[int] = []
    reader.on_raw_lines = lambda stream, run, first: runs.append((stream, len(run), first))
    callbacks = {
        "SCHEMA": lambda message: reader.raw_streams.add(message["stream"]),
        "RECORD": lambda message: records.append(reader.line_number),
    }
    with path.open("rb") as source:
        reader.process_lines(source, callbacks)
    assert records == [1]  # before its stream was raw
    assert runs == [("t", 2, 3)]
