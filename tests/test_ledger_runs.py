"""The delivery ledger through the real CLI and the strict fake API: a second run of the same
events sends none of them; a kill between acknowledgement and STATE re-sends at most what was in
flight; a dry run reads the ledger and writes nothing to it; a ledger that cannot be used fails
the run before anything is sent."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.harness import (
    TARGET_BIN,
    Run,
    assert_no_leaks,
    purchase,
    run_target,
    singer_lines,
    start_target,
    target_config,
    wait_until,
)

LEDGER = "spotify-conversions-ledger.sqlite"  # the default: in the working directory


def ledger_ids(workdir: Path) -> set[str]:
    """Every event the ledger holds: merged, or appended by a run that has not closed it."""
    with sqlite3.connect(workdir / LEDGER) as connection:
        return {row[0] for row in connection.execute(
            "SELECT event_id FROM ledger_delivered UNION SELECT event_id FROM ledger_appended")}


def test_a_second_run_of_the_same_events_sends_none_and_counts_them_as_already_delivered(
    fake, tmp_path
):
    work = tmp_path / "work"
    config = target_config(fake.url, summary_file="summary.json")  # the default ledger_url
    lines = singer_lines([purchase(i) for i in range(5_000)], state_every=1000)
    first = run_target(work, config, lines, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert fake.unique_count == 5_000
    assert fake.accepted_count == 5_000
    assert ledger_ids(work) == fake.accepted_ids()
    # A rehearsal against a sandbox fills the ledger too: the log says how to keep it out.
    assert "api_url is not Spotify's" in first.stderr
    assert "ledger_url none" in first.stderr
    requests_before = len(fake.requests)

    second = run_target(work, config, lines, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert fake.accepted_count == 5_000, "no event was sent a second time"
    assert len(fake.requests) == requests_before, "no request at all"
    assert second.count("events delivered") == 0
    assert second.count("events already delivered, not sent again") == 5_000
    summary = json.loads((work / "summary.json").read_text())
    assert (summary["already_delivered"], summary["events_delivered"]) == (5_000, 0)
    assert second.states[-1] == {"position": 5_000}, "its STATE still moves on"


def test_only_the_new_events_of_a_longer_input_are_sent(fake, tmp_path):
    work = tmp_path / "work"
    config = target_config(fake.url, events_per_request=7)
    run_target(work, config, singer_lines([purchase(i) for i in range(30)], state_every=10))
    second = run_target(work, config, singer_lines([purchase(i) for i in range(45)],
                                                   state_every=10))
    assert second.returncode == 0
    assert fake.accepted_count == 45
    assert fake.unique_count == 45
    assert second.count("events delivered") == 15
    assert second.count("events already delivered, not sent again") == 30


def test_resend_delivered_sends_them_again_on_purpose_and_none_turns_the_ledger_off(
    fake, tmp_path
):
    work = tmp_path / "work"
    lines = singer_lines([purchase(i) for i in range(20)], state_every=10)
    run_target(work, target_config(fake.url), lines)
    again = run_target(work, target_config(fake.url, resend_delivered=True), lines)
    assert again.returncode == 0
    assert again.count("events delivered") == 20
    assert fake.accepted_count == 40
    off = run_target(tmp_path / "off", target_config(fake.url, ledger_url="none"), lines)
    assert off.returncode == 0
    assert off.count("events delivered") == 20
    assert not (tmp_path / "off" / LEDGER).exists()
    assert "events already delivered" not in off.summary()


def test_a_kill_between_acknowledgement_and_state_resends_at_most_what_was_in_flight(
    fake, tmp_path
):
    fake.configure(latency=0.15)
    work = tmp_path / "work"
    per_request, concurrent, total = 40, 2, 2000
    config = target_config(fake.url, events_per_request=per_request,
                           max_concurrent_requests=concurrent)
    lines = singer_lines([purchase(i) for i in range(total)], state_every=per_request)
    process = start_target(work, config, lines)
    wait_until(lambda: fake.accepted_count >= 10 * per_request, "requests acknowledged", 120)
    process.kill()
    stdout, stderr = process.communicate(timeout=60)
    assert_no_leaks(Run(process.returncode, stdout, stderr, work, dict(config)), lines)
    acknowledged = fake.accepted_ids()
    recorded = ledger_ids(work)
    assert recorded <= acknowledged, "the ledger holds only what the API acknowledged"
    in_flight = acknowledged - recorded  # acknowledged, killed before its rows were written
    assert len(in_flight) <= concurrent * per_request
    states = [json.loads(line)["position"] for line in stdout.splitlines()]
    covered = {f"ord-{i}" for i in range(states[-1] if states else 0)}
    assert covered <= recorded, "no STATE passed an event the ledger does not hold"

    accepted_before = fake.accepted_count
    rerun = run_target(work, config, lines, timeout=300)  # its STATE lost: the whole input
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    resent = fake.accepted_count - accepted_before - (total - len(acknowledged))
    assert resent == len(in_flight), "only what was in flight at the kill is sent twice"
    assert fake.unique_count == total
    assert ledger_ids(work) == fake.accepted_ids(), "the ledger and the API agree"
    assert rerun.count("events already delivered, not sent again") == len(recorded)


def test_a_dry_run_leaves_out_what_was_delivered_and_writes_nothing_to_the_ledger(
    fake, tmp_path
):
    work = tmp_path / "work"
    run_target(work, target_config(fake.url), singer_lines([purchase(i) for i in range(10)]))
    before = hashlib.sha256((work / LEDGER).read_bytes()).hexdigest()
    dry = run_target(work, target_config(dry_run=True),
                     singer_lines([purchase(i) for i in range(15)]))
    assert dry.returncode == 0
    written = [event["event_id"] for body in dry.dry_run_bodies()
               for event in body["conversion_events"]["events"]]
    assert sorted(written) == sorted(f"ord-{i}" for i in range(10, 15))
    assert dry.count("events already delivered, not sent again") == 10
    assert hashlib.sha256((work / LEDGER).read_bytes()).hexdigest() == before
    assert len(ledger_ids(work)) == 10
    fresh = run_target(tmp_path / "fresh", target_config(dry_run=True),
                       singer_lines([purchase(1)]))
    assert fresh.returncode == 0
    assert len(fresh.dry_run_bodies()) == 1
    assert not (tmp_path / "fresh" / LEDGER).exists(), "a dry run creates no ledger"


def test_a_corrupt_ledger_fails_the_run_at_start_and_sends_nothing(fake, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / LEDGER).write_bytes(b"not a database at all " * 100)
    (work / "summary.json").write_text('{"outcome": "completed"}')  # the last run's
    run = run_target(work, target_config(fake.url, summary_file="summary.json"),
                     singer_lines([purchase(i) for i in range(5)], state_every=5))
    assert run.returncode == 1
    assert "delivery ledger (SQLite file spotify-conversions-ledger.sqlite) cannot be opened" \
        in run.stderr
    assert "ledger_url" in run.stderr
    assert fake.requests == []
    assert run.states == []
    # Found by an attack: the last run's report stayed, and an alert on it saw success.
    summary = json.loads((work / "summary.json").read_text())
    assert summary["outcome"] == "failed: LedgerError"
    assert summary["events_delivered"] == 0


def test_a_ledger_name_too_long_for_sqlites_side_files_stops_the_run_at_start_saying_why(
    fake, tmp_path
):
    work = tmp_path / "work"
    work.mkdir()
    name = "l" * (os.pathconf(work, "PC_NAME_MAX") - 4)  # NAME-wal fits, NAME-journal not
    run = run_target(work, target_config(fake.url, ledger_url=f"sqlite:///{name}"),
                     singer_lines([purchase(i) for i in range(5)], state_every=5))
    assert run.returncode == 1
    assert f"ledger_url: cannot use SQLite file {name}: its name is too long for SQLite's " \
        "side files" in run.stderr
    assert "unable to open database file" not in run.stderr
    assert fake.requests == []
    assert run.states == []
    assert not (work / name).exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_fifo_as_ledger_stops_the_run_at_start_saying_so(fake, tmp_path, dry_run):
    """A dry run opened the FIFO to read it and waited for a writer for ever (deaf to
    SIGTERM); a run failed with SQLite's "disk I/O error"."""
    work = tmp_path / "work"
    work.mkdir()
    os.mkfifo(work / LEDGER)
    run = run_target(work, target_config(fake.url, dry_run=dry_run),
                     singer_lines([purchase(i) for i in range(5)], state_every=5), timeout=60)
    assert run.returncode == 1
    assert f"ledger_url: cannot use SQLite file {LEDGER}: it is a FIFO (named pipe), not a " \
        "regular file" in run.stderr
    assert fake.requests == []
    assert run.states == []


def test_a_read_only_ledger_fails_the_run_at_start_and_sends_nothing(fake, tmp_path):
    work = tmp_path / "work"
    seed = run_target(work, target_config(fake.url), singer_lines([purchase(0)]))
    assert seed.returncode == 0
    accepted = fake.accepted_count
    os.chmod(work / LEDGER, 0o444)
    config = target_config(fake.url)
    if os.access(work / LEDGER, os.W_OK):  # root writes to any file: SQLite opens it read-only
        config["ledger_url"] = f"sqlite:///file:{LEDGER}?mode=ro&uri=true"
    run = run_target(work, config, singer_lines([purchase(i) for i in range(5)], state_every=5))
    assert run.returncode == 1, run.stderr[-2000:]
    assert "cannot be opened and written" in run.stderr
    assert "readonly database" in run.stderr
    assert fake.accepted_count == accepted
    assert run.states == []


def test_the_ledger_command_tells_when_an_event_was_delivered_and_what_the_api_answered(
    fake, tmp_path
):
    work = tmp_path / "work"
    run_target(work, target_config(fake.url), singer_lines([purchase(i) for i in range(3)]))
    command = str(Path(TARGET_BIN).with_name("spotify-conversions-ledger"))
    found = subprocess.run([command, "lookup", "ord-1"], cwd=work, capture_output=True,
                           text=True, timeout=60, check=False)
    assert found.returncode == 0, found.stderr
    [row] = json.loads(found.stdout)["delivered"]
    assert row["status"] == 200
    assert row["event_time"] == "2026-11-01T10:00:00.000Z"
    assert row["sent_at"].endswith("Z")
    assert row["answer"]
    missing = subprocess.run([command, "--config", "config.json", "lookup", "ord-99"],
                             cwd=work, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["delivered"] == []
    stats = subprocess.run([command, "stats"], cwd=work, capture_output=True, text=True,
                           timeout=60, check=False)
    assert stats.returncode == 0
    [connection] = json.loads(stats.stdout)["connections"]
    assert connection["events"] == 3
    elsewhere = subprocess.run([command, "stats"], cwd=tmp_path, capture_output=True,
                               text=True, timeout=60, check=False)
    assert elsewhere.returncode == 2
    assert "no ledger" in elsewhere.stderr
    assert not (tmp_path / LEDGER).exists(), "asking creates no ledger"
