"""Rejected records are kept on disk across runs: appended, tagged with their run, never wiped."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path

from target_spotify_conversions.problems import Problem
from target_spotify_conversions.rejects import Rejects
from target_spotify_conversions.report import RunReport
from tests.conftest import fill
from tests.harness import (
    Run,
    assert_no_leaks,
    purchase,
    run_target,
    singer_lines,
    start_target,
    target_config,
)

DEFAULT_FILE = "spotify-conversions-rejects.jsonl"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _by_run(lines: list[dict]) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for line in lines:
        runs.setdefault(line["run_id"], []).append(line["event_id"])
    return runs


def test_rejects_of_a_resume_and_of_a_failing_rerun_are_appended_not_wiped(fake, tmp_path):
    workdir = tmp_path / "run"
    config = target_config(fake.url, events_per_request=10)
    first = [purchase(i) for i in range(20)] + [purchase(20, currency="ZZZ")]
    run1 = run_target(workdir, config, singer_lines(first, state_every=7))
    assert run1.returncode == 0, run1.stderr[-2000:]
    assert run1.states[-1] == {"position": 21}

    resumed = [purchase(i) for i in range(21, 30)] + [purchase(30, currency="ZZZ")]
    run2 = run_target(workdir, config, singer_lines(resumed, state_every=5))
    assert run2.returncode == 0, run2.stderr[-2000:]

    fake.always(401)  # the re-run fails at once
    failing = [purchase(40, currency="ZZZ"), purchase(41)]
    run3 = run_target(workdir, config, singer_lines(failing))
    assert run3.returncode == 1
    assert "HTTP 401" in run3.stderr

    lines = _lines(workdir / "rejects.jsonl")
    runs = _by_run(lines)
    assert list(runs.values()) == [["ord-20"], ["ord-30"], ["ord-40"]]
    summaries = [run.summary()["run"] for run in (run1, run2, run3)]
    assert list(runs) == summaries, "each line names the run whose summary it belongs to"
    assert all(line["run_started"].endswith("Z") for line in lines)

    # One run's rejects, fixed and fed back, are delivered with their event ids.
    fake.always(None)
    picked = [line for line in lines if line["run_id"] == summaries[1]]
    fixed = [{**line["record"], "currency": "EUR"} for line in picked]
    again = run_target(tmp_path / "again", config, singer_lines(fixed))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "ord-30" in fake.accepted_ids()
    assert again.rejects() == []


def test_rejects_are_kept_by_default_and_no_file_without_rejects(fake, tmp_path):
    config = target_config(fake.url)
    del config["rejects_file"]
    clean = run_target(tmp_path / "clean", config, singer_lines([purchase(1)]))
    assert clean.returncode == 0
    assert not (tmp_path / "clean" / DEFAULT_FILE).exists(), "no rejects, no file"

    records = [purchase(1), purchase(2, currency="ZZZ"), purchase(3, currency="ZZZ")]
    run = run_target(tmp_path / "run", config, singer_lines(records))
    assert run.returncode == 0
    kept = _lines(tmp_path / "run" / DEFAULT_FILE)
    assert sorted(line["event_id"] for line in kept) == ["ord-2", "ord-3"]


def test_two_runs_appending_at_once_write_whole_lines(fake, tmp_path):
    """Each run's rejects reach the shared file in whole-line writes of many lines."""
    shared = tmp_path / "shared-rejects.jsonl"
    config = target_config(fake.url, rejects_file=str(shared))
    inputs = {
        name: singer_lines(purchase(i, currency="ZZZ", event=name * 200) for i in range(3000))
        for name in ("a", "b")
    }
    processes = {
        name: start_target(tmp_path / name, config, lines) for name, lines in inputs.items()
    }
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        # Every record is rejected: each run fails at its end (contract §8), files written.
        assert process.returncode == 1, stderr[-2000:]
        assert "3000 of 3000 records read were rejected" in stderr
        assert_no_leaks(Run(1, stdout, stderr, tmp_path / name, config), inputs[name])
    lines = _lines(shared)  # a half line would not parse
    assert sorted(len(ids) for ids in _by_run(lines).values()) == [3000, 3000]


def test_a_run_opening_the_file_mid_way_through_another_runs_write_keeps_every_line(tmp_path):
    """Another run's write of many lines can be seen half done; taken for the half line of a
    cut-short run, it got a line break of its own in the middle of a line."""
    shared = tmp_path / "rejects.jsonl"
    other = os.open(shared, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)  # the other run's turn: its write is under way
    first_half, second_half = b'{"event_id": "other-1", "reasons"', b': ["x"]}\n'
    os.write(other, first_half)
    logger = logging.getLogger("test-rejects")
    rejects = Rejects(RunReport(logger), logger, path=str(shared), fail=False,
                      redact=lambda record, _: dict(record), run={"run_id": "this"})
    rejects.reject("s", "this-1", [Problem("invalid_currency", "no")], {"currency": "ZZZ"})
    writer = threading.Thread(target=rejects.close)
    writer.start()
    writer.join(timeout=0.5)  # this run waits for its turn
    os.write(other, second_half)
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    writer.join(timeout=10)
    assert not writer.is_alive()
    lines = shared.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the file ends a line"
    assert [json.loads(line)["event_id"] for line in lines[:-1]] == ["other-1", "this-1"]


def _rejects(path: Path, logger: logging.Logger) -> Rejects:
    return Rejects(RunReport(logger), logger, path=str(path), fail=False,
                   redact=lambda record, _: dict(record), run={"run_id": "this"})


def _reject_and_flush(rejects: Rejects, n: int) -> None:
    rejects.reject("s", f"this-{n}", [Problem("invalid_currency", "no")], {"currency": "ZZZ"})
    rejects.flush()


def test_a_lock_held_by_another_process_is_waited_for_once_not_at_every_write(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr("target_spotify_conversions.rejects.TURN_WAIT", 0.5)
    shared = tmp_path / "rejects.jsonl"
    other = os.open(shared, os.O_WRONLY | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)  # held for the whole run: a foreign `flock`, a stopped run
    rejects = _rejects(shared, logging.getLogger("test-rejects"))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        for n in range(10):
            _reject_and_flush(rejects, n)
        rejects.close()
    took = time.monotonic() - started
    os.close(other)
    assert took < 0.5 + 2, f"ten writes took {took:.1f} s"
    assert [json.loads(line)["event_id"] for line in shared.read_text().splitlines()] == [
        f"this-{n}" for n in range(10)
    ]
    warned = [r for r in caplog.records if "could not be locked within 0.5 s" in r.getMessage()]
    assert len(warned) == 1


def test_rejects_turned_off_with_dev_null_take_no_turns(tmp_path):
    """/dev/null is shared by every process: a lock another one holds there is not ours."""
    other = os.open(os.devnull, os.O_WRONLY)
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        rejects = _rejects(Path(os.devnull), logging.getLogger("test-rejects"))
        started = time.monotonic()
        for n in range(3):
            _reject_and_flush(rejects, n)
        rejects.close()
        assert time.monotonic() - started < 1
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)


def test_a_full_disk_under_the_rejects_file_stops_the_run_clearly_without_state(
    fake, tmp_path, small_disk
):
    fill(small_disk)
    lines = singer_lines([purchase(1), purchase(2, currency="ZZZ"), purchase(3)], state_every=1)
    config = target_config(fake.url, rejects_file=str(small_disk / "rejects.jsonl"))
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 1
    assert "could not write an output file (No space left on device)" in run.stderr
    assert "Internal error" not in run.stderr
    assert run.states in ([], [{"position": 1}])  # never past the reject that is not on disk


def _messy_record(i: int) -> dict:
    """Records every stage rejects, some of them with text that is not ASCII (such a line
    leaves the lean path), between records that are sent."""
    kind = i % 6
    if kind == 1:
        return purchase(i, **{"$ip": 12345})  # fails the schema: the SDK side or a worker
    if kind == 2:
        return purchase(i, currency="??")  # refused by the mapping, at a worker
    if kind == 3:
        return purchase(i, **{"$ip": 7}, content_name="Crème brûlée")  # schema, not ASCII
    if kind == 4:
        return purchase(i, currency="€", content_name="Smørrebrød")  # mapping, not ASCII
    return purchase(i, content_name="Zoë" if i % 4 else "plain")


MODES = {
    "inline-lean": {"mapping_processes": 0},
    "workers-lean": {"mapping_processes": 2},
    "workers-stream-map": {"mapping_processes": 2, "stream_maps": {"conversions": {}}},
    "inline-metadata": {"mapping_processes": 0, "add_record_metadata": True},
    "workers-metadata": {"mapping_processes": 2, "add_record_metadata": True},
}


def test_the_rejects_file_is_in_input_order_in_every_mode(tmp_path):
    """Whatever path a record takes and wherever it is refused, the rejects file lists the
    records in the order they were read, byte for byte the same in every mode, and the
    summary's sample ids are the same too."""
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(_messy_record(i)) + "\n" for i in range(100, 160))
                     + "not json at all\n" + json.dumps(_messy_record(160)) + "\n")
    lines = singer_lines(_messy_record(i) for i in range(60))
    lines[30:30] = ["this line is no JSON", json.dumps({
        "type": "BATCH", "stream": "conversions", "manifest": [batch.as_uri()],
        "encoding": {"format": "jsonl", "compression": "none"}})]
    outputs = {}
    for mode, settings in MODES.items():
        config = target_config(dry_run=True, events_per_request=4, summary_file="summary.json",
                               **settings)
        run = run_target(tmp_path / mode, config, lines)
        assert run.returncode == 0, run.stderr[-2000:]
        rejects = [json.dumps({k: v for k, v in line.items()
                               if k not in ("run_id", "run_started")}) for line in run.rejects()]
        summary = json.loads((run.workdir / "summary.json").read_text())
        outputs[mode] = (rejects, summary["sample_event_ids"])
    rejects, samples = outputs["inline-lean"]
    refused = [f"ord-{i}" for i in (*range(60), *range(100, 161)) if i % 6 in (1, 2, 3, 4)]
    before, batch, after = refused[:20], refused[20 + 20:-1], refused[20:40]  # ord-29 on: after
    assert [json.loads(line)["event_id"] for line in rejects] == [
        *before, "line-31", *batch, "line-61", "ord-160", *after]
    for mode, output in outputs.items():
        assert output[0] == rejects, f"{mode}: rejects differ from inline-lean"
        assert output[1] == samples, f"{mode}: sample ids differ from inline-lean"


def test_a_rejects_file_ending_in_half_a_line_gets_its_line_ended_first(fake, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    cut = '{"run_id": "earlier", "stream": "conversions", "event_id": "ord-9", "reas'
    (workdir / "rejects.jsonl").write_text(cut)  # what a full disk left of the last line
    lines = singer_lines([purchase(1), purchase(2, currency="ZZZ")], state_every=1)
    run = run_target(workdir, target_config(fake.url), lines)
    assert run.returncode == 0, run.stderr
    assert "rejects_file ended in half a line" in run.stderr
    assert "this run's rejects start on a new line" in run.stderr
    text = (workdir / "rejects.jsonl").read_text()
    first, second = text.splitlines()
    assert first == cut  # left as it was: the earlier run's broken line, alone on its line
    assert json.loads(second)["event_id"] == "ord-2"
    assert text.endswith("\n")
    again = run_target(workdir, target_config(fake.url), lines)  # a whole file: nothing to end
    assert "half a line" not in again.stderr
    assert len((workdir / "rejects.jsonl").read_text().splitlines()) == 3


def test_a_rejects_file_that_is_a_fifo_is_refused_at_start_without_blocking(fake, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    os.mkfifo(workdir / "rejects.jsonl")  # opening it to write would wait for a reader forever
    lines = singer_lines([purchase(1), purchase(2, currency="ZZZ")], state_every=1)
    started = time.monotonic()
    run = run_target(workdir, target_config(fake.url), lines)
    assert time.monotonic() - started < 30
    assert run.returncode == 1
    assert "rejects_file names a FIFO (named pipe), not a regular file" in run.stderr
    assert run.states == []
    assert fake.requests == []


def test_a_dry_run_file_that_is_a_hard_link_of_the_rejects_file_is_refused_untouched(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    earlier = '{"run_id": "earlier", "stream": "conversions", "event_id": "ord-9"}\n'
    (workdir / "rejects.jsonl").write_text(earlier)
    os.link(workdir / "rejects.jsonl", workdir / "dry-run.jsonl")  # one inode, two names
    lines = singer_lines([purchase(1), purchase(2, currency="ZZZ")], state_every=1)
    run = run_target(workdir, target_config(dry_run=True), lines)
    assert run.returncode == 1
    assert "rejects_file and dry_run_file name the same file" in run.stderr
    assert (workdir / "rejects.jsonl").read_text() == earlier  # the dry run truncated nothing
