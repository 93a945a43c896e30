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
