"""The operator's view: the summary file, traceable and bounded logging, consent, hints."""

from __future__ import annotations

import json

import pytest

from target_spotify_conversions.mapping import IDENTIFIERS
from target_spotify_conversions.report import (
    LOGGED_PER_KIND,
    unmatched_stream_maps,
)
from tests.conftest import fill
from tests.harness import (
    purchase,
    record_message,
    run_target,
    schema_message,
    singer_lines,
    state_message,
    target_config,
)


def read_report(run) -> dict:
    return json.loads((run.workdir / "report.json").read_text())


def test_the_summary_file_counts_what_the_api_received(fake, tmp_path):
    good = [purchase(i) for i in range(30)]
    good += [purchase(100 + i, phone=None, **{"$ip": "10.0.0.5"}) for i in range(10)]
    good += [purchase(200, **{"$device_id": "dev-1", "event_source_url":
                              "https://shop.example/?spclid=click-9"})]
    bad = [
        purchase(300, currency="ZZZ"),
        purchase(301, currency="ZZZ"),
        purchase(302, amount=-12.5),
        purchase(303, **{"$event_time": "2099-01-01T00:00:00Z"}),
    ]
    config = target_config(fake.url, summary_file="report.json")
    run = run_target(tmp_path / "run", config, singer_lines(good + bad))
    assert run.returncode == 0, run.stderr

    report = read_report(run)
    assert report["outcome"] == "completed"
    assert report["dry_run"] is False
    assert report["records_read"] == 45
    assert report["events_delivered"] == fake.unique_count == 41
    assert report["records_rejected"] == 4
    assert report["rejected_by_reason"] == {
        "event_time_in_future": 1, "invalid_amount": 1, "invalid_currency": 2,
    }
    assert report["warnings_by_kind"] == {"ip_not_public": 10}
    assert report["sample_event_ids"]["rejected"]["invalid_currency"] == ["ord-300", "ord-301"]
    assert report["sample_event_ids"]["warnings"]["ip_not_public"] == [
        f"ord-{100 + i}" for i in range(5)
    ]
    sent = list(fake.accepted.values())
    for name in IDENTIFIERS:
        share = sum(name in event["user_data"] for event in sent) / len(sent)
        assert report["identifier_coverage"][name] == round(share, 4), name
    assert report["identifier_coverage"]["ip_address"] == round(31 / 41, 4)
    assert report["identifier_coverage"]["clickID"] == round(1 / 41, 4)
    assert report["requests"] >= 1
    assert report["retries"] == 0
    assert any("bookmark" in hint for hint in report["hints"])
    summary = run.summary()
    assert "hashed_emails 100.0%" in summary["identifier coverage"]
    assert "ip_address 75.6%" in summary["identifier coverage"]


def test_a_failed_run_writes_its_summary_file_too(fake, tmp_path):
    fake.always(401)
    config = target_config(fake.url, summary_file="out/report.json")
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    report = json.loads((run.workdir / "out" / "report.json").read_text())
    assert report["outcome"].startswith("failed")
    assert report["events_delivered"] == 0
    assert report["records_read"] == 1


def test_a_dry_run_report_counts_events_written_not_delivered(tmp_path):
    config = target_config(dry_run=True, summary_file="report.json")
    run = run_target(tmp_path / "run", config, singer_lines([purchase(i) for i in range(5)]))
    assert run.returncode == 0, run.stderr
    report = read_report(run)
    assert report["dry_run"] is True
    assert report["events_delivered"] == 5
    assert "events written to the dry-run file" in run.summary()
    assert "events delivered" not in run.summary()


def test_twenty_thousand_rejects_write_little_log_and_the_first_are_traceable(fake, tmp_path):
    # No email or phone: the harness's leak check would compare 40,000 secrets with every file.
    records = [purchase(i, currency="ZZZ", email=None, phone=None) for i in range(20_000)]
    config = target_config(fake.url, summary_file="report.json")
    run = run_target(tmp_path / "run", config, singer_lines(records), timeout=300)
    assert run.returncode == 1, "every record was rejected: the run fails (contract §8)"
    assert run.count("records rejected") == 20_000
    assert len(run.stderr.encode()) < 300_000, len(run.stderr.encode())
    logged = [line for line in run.stderr.splitlines() if "Rejected record" in line]
    assert len(logged) == LOGGED_PER_KIND
    assert all('"conversions"' in line and "invalid_currency" in line for line in logged)
    assert '"ord-0"' in logged[0]
    assert run.count("rejects and warnings not logged one by one") == 20_000 - LOGGED_PER_KIND
    assert len(run.rejects()) == 20_000  # the file keeps every one


def test_warnings_are_logged_with_stream_event_id_and_field_never_the_value(fake, tmp_path):
    records = [purchase(i, **{"$ip": "192.168.7.7"}) for i in range(12)]
    run = run_target(tmp_path / "run", target_config(fake.url), singer_lines(records))
    assert run.returncode == 0, run.stderr
    logged = [line for line in run.stderr.splitlines() if "Warning ip_not_public" in line]
    assert len(logged) == LOGGED_PER_KIND
    assert 'event_id "ord-0", field "$ip"' in logged[0]
    assert "192.168.7.7" not in run.stderr
    assert run.count("warning ip_not_public") == 12


CONSENT = [
    (True, True), ("true", True), ("Granted", True), (" yes ", True), (1, True), ("1", True),
    (False, False), ("false", False), ("denied", False), (0, False), (None, False),
    ("maybe", False), (2, False), ("", False),
]


def test_records_without_a_clear_yes_are_skipped_counted_and_not_kept(fake, tmp_path):
    records = [
        purchase(i, consent={"ads": value}) for i, (value, _) in enumerate(CONSENT)
    ] + [purchase(99)]  # no consent object at all: a no
    config = target_config(fake.url, consent_property="consent.ads", summary_file="report.json")
    lines = singer_lines(records)
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 0, run.stderr
    expected = {f"ord-{i}" for i, (_, yes) in enumerate(CONSENT) if yes}
    assert fake.accepted_ids() == expected
    skipped = len(records) - len(expected)
    assert run.count("records skipped without consent") == skipped
    assert read_report(run)["skipped_no_consent"] == skipped
    assert run.rejects() == []
    assert run.count("records rejected") == 0


def test_a_flat_consent_column_is_read_by_its_name(fake, tmp_path):
    records = [purchase(1, **{"consent.ads": "granted"}), purchase(2, **{"consent.ads": "no"})]
    config = target_config(fake.url, consent_property="consent.ads")
    run = run_target(tmp_path / "run", config, singer_lines(records))
    assert run.returncode == 0, run.stderr
    assert fake.accepted_ids() == {"ord-1"}


def test_a_stream_map_key_that_matches_no_stream_is_named(fake, tmp_path):
    maps = {"orders": {"amount": "total"}, "conversions": {"currency": "currency"}}
    config = target_config(fake.url, stream_maps=maps)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 0, run.stderr
    hints = [line for line in run.stderr.splitlines() if "Hint:" in line]
    assert any('stream_maps key "orders" matched no stream' in hint and '"conversions"' in hint
               for hint in hints), hints
    assert not any('key "conversions"' in hint for hint in hints)


def test_a_token_as_a_stream_map_key_is_not_shown_in_the_hint(fake, tmp_path):
    maps = {"QwErTyUiOpAsDfGhJkLz": {"amount": "total"}}
    run = run_target(tmp_path / "run", target_config(fake.url, stream_maps=maps),
                     singer_lines([purchase(1)]))
    assert run.returncode == 0, run.stderr
    assert "QwErTyUiOp" not in run.stderr
    assert "stream_maps key a string of 20 characters (not shown) matched no stream" in run.stderr


def test_a_stream_whose_every_record_was_rejected_for_one_reason_is_called_out(fake, tmp_path):
    lines = [
        schema_message("public-orders"),
        *(record_message(purchase(i, currency="ZZZ"), "public-orders") for i in range(5)),
        schema_message("conversions"),
        record_message(purchase(10)),
        state_message({"done": True}),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.returncode == 0, run.stderr
    hints = [line for line in run.stderr.splitlines() if "Hint:" in line]
    assert any('stream "public-orders" (5) was rejected for invalid_currency' in h
               for h in hints), hints
    assert not any('"conversions"' in h for h in hints)


@pytest.mark.parametrize(
    ("maps", "seen", "named"),
    [
        ({"orders": {}}, ["public-orders"], ["orders"]),
        ({"public-orders": {}}, ["public-orders"], []),
        ({"purchases": {"__source__": "public-orders"}}, ["public-orders"], []),
        ({"purchases": {"__source__": "orders"}}, ["public-orders"], ["purchases"]),
        ({"__else__": None}, [], []),
    ],
)
def test_unmatched_stream_maps(maps, seen, named):
    hints = unmatched_stream_maps(maps, seen)
    assert [hint.split('"')[1] for hint in hints] == named


def test_a_full_disk_under_the_summary_file_leaves_no_half_file_and_tells_the_truth(
    fake, tmp_path, small_disk
):
    earlier = small_disk / "report.json"
    earlier.write_text('{"outcome": "completed", "records_read": 7}\n')
    fill(small_disk)
    lines = singer_lines([purchase(i) for i in range(30)], state_every=10)
    config = target_config(fake.url, summary_file=str(earlier))
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 1
    assert run.states[-1] == {"position": 30}  # everything delivered, the final STATE written
    assert fake.unique_count == 30
    assert (
        "Run failed: summary_file could not be written (No space left on device); the run "
        "itself completed: every event read was delivered or rejected and the final STATE "
        "was written, so a re-run sends nothing again"
    ) in run.stderr
    assert "sends the rest" not in run.stderr
    assert "Internal error" not in run.stderr
    assert sorted(path.name for path in small_disk.iterdir()) == ["filler", "report.json"]
    assert json.loads(earlier.read_text()) == {"outcome": "completed", "records_read": 7}


def test_a_full_disk_under_the_summary_file_of_a_dry_run_tells_the_truth_about_state(
    tmp_path, small_disk
):
    """Found by an attack: the message after a dry run said the final STATE was written, and
    a dry run writes none."""
    earlier = small_disk / "report.json"
    earlier.write_text('{"outcome": "completed", "records_read": 7}\n')
    fill(small_disk)
    lines = singer_lines([purchase(i) for i in range(30)], state_every=10)
    config = target_config(dry_run=True, summary_file=str(earlier))
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 1
    assert run.states == []
    assert len(run.dry_run_bodies()) == 1
    assert (
        "Run failed: summary_file could not be written (No space left on device); the dry run "
        "itself completed: every event read was written to the dry-run file or rejected; as in "
        "every dry run, nothing was sent and no STATE was written"
    ) in run.stderr
    assert "final STATE" not in run.stderr
    assert "re-run" not in run.stderr
    assert json.loads(earlier.read_text()) == {"outcome": "completed", "records_read": 7}


def test_a_summary_file_on_dev_null_leaves_the_device_as_it_is(tmp_path):
    """Written whole by a rename, the summary would turn /dev/null into a file (as root, for
    every program of the machine: a database server could then no longer start)."""
    import logging
    import os
    import stat
    import subprocess

    from target_spotify_conversions.report import RunReport

    report = RunReport(logging.getLogger("test"), run_id="r", dry_run=True)
    try:
        report.write_file(os.devnull, "completed")
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    finally:  # never leave the machine without its /dev/null, even when this test fails
        if not stat.S_ISCHR(os.stat(os.devnull).st_mode):
            os.unlink(os.devnull)
            subprocess.run(["mknod", "-m", "666", os.devnull, "c", "1", "3"], check=True)
    assert list(tmp_path.iterdir()) == []


def test_outputs_whose_names_are_at_the_file_systems_limit_are_written(tmp_path):
    """A name that fits passes the start-up check; the summary, written under a temporary name
    beside it first, must not then fail at the end for that name's length."""
    import os

    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    names = {
        "summary_file": "s" * (longest - len(".json")) + ".json",
        "rejects_file": "r" * (longest - len(".jsonl")) + ".jsonl",
        "dry_run_file": "d" * (longest - len(".jsonl")) + ".jsonl",
    }
    lines = singer_lines([purchase(1), purchase(2, currency="ZZZ")], state_every=1)
    run = run_target(tmp_path / "run", target_config(dry_run=True, **names), lines)

    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((run.workdir / names["summary_file"]).read_text())
    assert summary["outcome"] == "completed"
    assert summary["records_rejected"] == 1
    assert len((run.workdir / names["rejects_file"]).read_text().splitlines()) == 1
    assert len((run.workdir / names["dry_run_file"]).read_text().splitlines()) == 1
    assert not [path.name for path in run.workdir.iterdir() if path.name.startswith(".")]


def test_a_summary_file_that_is_a_link_is_written_through_it_and_stays_a_link(fake, tmp_path):
    """As the rejects and dry-run files are: the user's link stays, its file gets the summary
    (renamed over the link, the link had become a file and its target kept the old summary)."""
    kept = tmp_path / "reports" / "latest.json"
    kept.parent.mkdir()
    kept.write_text('{"outcome": "an older run"}\n')
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.json").symlink_to(kept)

    run = run_target(tmp_path / "run", target_config(fake.url, summary_file="report.json"),
                     singer_lines([purchase(i) for i in range(3)]))

    assert run.returncode == 0, run.stderr[-2000:]
    link = tmp_path / "run" / "report.json"
    assert link.is_symlink()
    assert link.resolve() == kept.resolve()
    report = json.loads(kept.read_text())
    assert report["outcome"] == "completed"
    assert report["events_delivered"] == 3
    assert sorted(path.name for path in kept.parent.iterdir()) == ["latest.json"]
