"""The reject limit through the real CLI: a run whose every record was rejected exits 1, as does
one above `max_rejected_share`, each after writing its rejects, summary and STATE; a run with
no record at all is no failure."""

from __future__ import annotations

import json

from tests.harness import purchase, run_target, schema_message, singer_lines, state_message
from tests.harness import target_config as harness_config


def target_config(url: str, **settings):
    return harness_config(url, summary_file="summary.json", ledger_url="none", **settings)


def no_identifier(i: int) -> dict:
    return purchase(i, email=None, phone=None, **{"$ip": None})


def test_a_run_whose_every_record_is_rejected_fails_after_writing_everything(fake, tmp_path):
    lines = singer_lines([no_identifier(i) for i in range(30)], state_every=10)
    run = run_target(tmp_path / "work", target_config(fake.url), lines)
    assert run.returncode == 1
    assert "Run failed: 30 of 30 records read were rejected (100.0%)" in run.stderr
    assert len(run.rejects()) == 30, "every reject is on disk"
    assert run.states[-1] == {"position": 30}, "the STATE for what it finished"
    assert run.summary()["outcome"] == "failed: too many records rejected"
    assert run.summary()["rejected share"].startswith("1.0000")
    summary = json.loads((tmp_path / "work" / "summary.json").read_text())
    assert summary["rejected_share"] == 1.0
    assert summary["outcome"] == "failed: too many records rejected"
    assert fake.requests == []


def test_half_rejected_without_a_limit_succeeds(fake, tmp_path):
    records = [purchase(i) if i % 2 else no_identifier(i) for i in range(40)]
    run = run_target(tmp_path / "work", target_config(fake.url), singer_lines(records,
                                                                               state_every=10))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.summary()["rejected share"] == (
        "0.5000 (max_rejected_share: none (only a run of all rejects fails))"
    )
    assert fake.unique_count == 20


def test_half_rejected_above_a_limit_fails_after_delivering_the_rest(fake, tmp_path):
    records = [purchase(i) if i % 2 else no_identifier(i) for i in range(40)]
    run = run_target(tmp_path / "work", target_config(fake.url, max_rejected_share=0.25),
                     singer_lines(records, state_every=10))
    assert run.returncode == 1
    assert "20 of 40 records read were rejected (50.0%): above max_rejected_share 0.25" \
        in run.stderr
    assert run.summary()["rejected share"] == "0.5000 (max_rejected_share: 0.25)"
    assert fake.unique_count == 20, "the valid half was delivered"
    assert len(run.rejects()) == 20
    assert run.states[-1] == {"position": 40}
    summary = json.loads((tmp_path / "work" / "summary.json").read_text())
    assert (summary["rejected_share"], summary["max_rejected_share"]) == (0.5, 0.25)


def test_a_share_at_the_limit_passes(fake, tmp_path):
    records = [purchase(i) if i % 2 else no_identifier(i) for i in range(40)]
    run = run_target(tmp_path / "work", target_config(fake.url, max_rejected_share=0.5),
                     singer_lines(records))
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_run_with_no_record_is_no_failure(fake, tmp_path):
    lines = [schema_message(), state_message({"position": 0})]
    run = run_target(tmp_path / "work", target_config(fake.url, max_rejected_share=0), lines)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.states == [{"position": 0}]
    assert run.summary()["rejected share"].startswith("0.0000")


def test_a_share_outside_0_to_1_is_refused_at_start(fake, tmp_path):
    run = run_target(tmp_path / "work", target_config(fake.url, max_rejected_share=1.5),
                     singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "max_rejected_share" in run.stderr
    assert fake.requests == []
