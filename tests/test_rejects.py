"""Rejected records are kept on disk across runs: appended, tagged with their run, never wiped."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_a_full_disk_under_the_rejects_file_stops_the_run_clearly_without_state(fake, tmp_path):
    lines = singer_lines([purchase(1), purchase(2, currency="ZZZ"), purchase(3)], state_every=1)
    run = run_target(tmp_path / "run", target_config(fake.url, rejects_file="/dev/full"), lines)
    assert run.returncode == 1
    assert "could not write an output file (No space left on device)" in run.stderr
    assert "Internal error" not in run.stderr
    assert run.states in ([], [{"position": 1}])  # never past the reject that is not on disk
