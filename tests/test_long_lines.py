"""A line over max_line_bytes is rejected by its number and size, in linear time and bounded
memory, on stdin and in BATCH files (issue 19); the other lines go on as usual."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

from target_spotify_conversions.batch_files import batch_blocks
from tests.harness import (
    TARGET_BIN,
    Run,
    assert_no_leaks,
    purchase,
    record_message,
    schema_message,
    state_message,
    target_config,
)

MB = 1 << 20
# Runs the target and prints the peak resident memory of its largest process, in kB.
_PEAK = (
    "import resource, subprocess, sys; "
    "done = subprocess.run(sys.argv[1:], stdin=sys.stdin); "
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
    "sys.stderr.write(f'\\npeak-rss-kb {peak}\\n'); "
    "sys.exit(done.returncode)"
)


def _measured_run(workdir: Path, config: dict, input_path: Path) -> tuple[Run, float, int]:
    """The run, its seconds and its peak memory in MB (the reading process or a worker)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config))
    started = time.monotonic()
    with input_path.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, TARGET_BIN, "--config", "config.json"],
            stdin=stdin, cwd=workdir, capture_output=True, text=True, timeout=300, check=False,
        )
    took = time.monotonic() - started
    peak_kb = int(done.stderr.rsplit("peak-rss-kb ", 1)[1].split()[0])
    return Run(done.returncode, done.stdout, done.stderr, workdir, config), took, peak_kb // 1024


def _long_record(size: int) -> str:
    return record_message({**purchase(0), "notes": "n" * size})


def test_a_100_mb_record_line_on_stdin_is_rejected_by_number_and_size(fake, tmp_path):
    lines = [schema_message(), record_message(purchase(1)), _long_record(100 * MB),
             record_message(purchase(2)), state_message({"position": 3})]
    input_path = tmp_path / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    size = len(lines[2].encode())
    run, took, peak_mb = _measured_run(tmp_path / "run", target_config(fake.url), input_path)
    print(f"\n[100 MB line on stdin] {took:.1f} s, peak {peak_mb} MB")
    assert run.returncode == 0, run.stderr[-2000:]
    [reject] = run.rejects()
    assert reject["event_id"] == "line-3"
    assert reject["reasons"] == [
        f"input_line_too_long: input line 3 is {size} bytes long, over the limit of {4 * MB} "
        "bytes (max_line_bytes)"
    ]
    assert "nnnn" not in run.stderr
    assert "nnnn" not in json.dumps(reject)
    assert sorted(fake.accepted_ids()) == ["ord-1", "ord-2"]
    assert run.states == [{"position": 3}]
    assert "rejected input_line_too_long" in run.stderr
    assert peak_mb < 200, f"peak memory {peak_mb} MB for one 100 MB line"
    assert took < 60
    assert_no_leaks(run, [lines[0], lines[1], lines[3]])


def _gzip_of_one_long_line(path: Path, size: int, then: list[str]) -> None:
    """A gzip file whose first line inflates to `size` bytes, written a block at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    with path.open("wb") as file:
        file.write(packer.compress(b'{"notes": "'))
        block = b"n" * MB
        for _ in range(size // MB):
            file.write(packer.compress(block))
        file.write(packer.compress(b'"}\n' + "".join(line + "\n" for line in then).encode()))
        file.write(packer.flush())


def test_a_300_mb_line_in_a_small_gzip_batch_file_takes_seconds_and_little_memory(
    fake, tmp_path
):
    files = tmp_path / "files"
    files.mkdir()
    batch = files / "part-0.jsonl.gz"
    _gzip_of_one_long_line(batch, 300 * MB, [json.dumps(purchase(i)) for i in (1, 2)])
    print(f"\n[300 MB line in BATCH] gzip file of {batch.stat().st_size // 1024} kB")
    assert batch.stat().st_size < 400 * 1024
    lines = [
        schema_message(),
        json.dumps({"type": "BATCH", "stream": "conversions", "manifest": [batch.as_uri()],
                    "encoding": {"format": "jsonl", "compression": "gzip"}}),
        state_message({"position": 1}),
    ]
    input_path = tmp_path / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    run, took, peak_mb = _measured_run(tmp_path / "run", target_config(fake.url), input_path)
    print(f"[300 MB line in BATCH] {took:.1f} s, peak {peak_mb} MB")
    assert run.returncode == 0, run.stderr[-2000:]
    [reject] = run.rejects()
    assert reject["reasons"] == [
        f"input_line_too_long: line 1 of BATCH file {batch.as_uri()!r} is {300 * MB + 13} "
        f"bytes long, over the limit of {4 * MB} bytes (max_line_bytes)"
    ]
    assert sorted(fake.accepted_ids()) == ["ord-1", "ord-2"]
    assert run.states == [{"position": 1}]
    assert took < 30, f"{took:.1f} s for one 300 MB line"
    assert peak_mb < 200, f"peak memory {peak_mb} MB for one 300 MB line"
    assert_no_leaks(run, lines)


def test_a_stop_is_seen_while_a_long_batch_line_is_read_past(tmp_path):
    batch = tmp_path / "part-0.jsonl.gz"
    _gzip_of_one_long_line(batch, 300 * MB, [json.dumps(purchase(1))])
    message = {"type": "BATCH", "stream": "conversions", "manifest": [batch.as_uri()],
               "encoding": {"format": "jsonl", "compression": "gzip"}}
    asked = []

    def stopped() -> bool:  # a stop requested while the third block of the line is read
        asked.append(1)
        return len(asked) >= 3

    started = time.monotonic()
    assert list(batch_blocks(message, 4 * MB, stopped)) == []
    assert len(asked) == 3
    assert time.monotonic() - started < 2.0


def test_max_line_bytes_is_a_setting_and_lines_up_to_it_are_read(fake, tmp_path):
    lines = [schema_message(), _long_record(300_000), record_message(purchase(2)),
             state_message({"position": 2})]
    input_path = tmp_path / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    config = target_config(fake.url, max_line_bytes=200_000)
    run, _, _ = _measured_run(tmp_path / "small", config, input_path)
    assert [r["event_id"] for r in run.rejects()] == ["line-2"]
    config = target_config(fake.url, max_line_bytes=400_000)
    run, _, _ = _measured_run(tmp_path / "large", config, input_path)
    assert run.rejects() == []
    assert sorted(fake.accepted_ids()) == ["ord-0", "ord-2"]


def test_records_of_116_kb_are_held_by_bytes_not_only_by_number(fake, tmp_path):
    count = 2_000
    input_path = tmp_path / "input.jsonl"
    with input_path.open("w") as file:
        file.write(schema_message() + "\n")
        for i in range(count):
            file.write(record_message({**purchase(i), "notes": "n" * 116_000}) + "\n")
        file.write(state_message({"position": count}) + "\n")
    config = target_config(fake.url, mapping_processes=2)
    run, took, peak_mb = _measured_run(tmp_path / "run", config, input_path)
    print(f"\n[{count} records of 116 kB] {took:.1f} s, peak {peak_mb} MB")
    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.unique_count == count
    assert run.states == [{"position": count}]
    assert peak_mb < 200, f"peak memory {peak_mb} MB for {count} records of 116 kB"
