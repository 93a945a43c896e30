"""Thousands of streams (a tap per tenant, shard or day): work and memory per stream stay small
(issue 19: 20,000 streams took 38.5 s and 307 MB; each checked and compiled its schema again)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness import TARGET_BIN, purchase, record_message, schema_message, state_message

STREAMS = 5_000
# Runs the target; prints the CPU seconds and the peak memory (kB) of its largest process.
_MEASURE = (
    "import resource, subprocess, sys; "
    "done = subprocess.run(sys.argv[1:], stdin=sys.stdin); "
    "use = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "sys.stderr.write(f'\\nmeasured {use.ru_utime + use.ru_stime} {use.ru_maxrss}\\n'); "
    "sys.exit(done.returncode)"
)


def _measure(workdir: Path, lines: list[str]) -> tuple[float, int, str]:
    """CPU seconds, peak MB and the log of a dry run of `lines`."""
    workdir.mkdir()
    (workdir / "input.jsonl").write_text("\n".join(lines) + "\n")
    config = {"dry_run": True, "dry_run_file": "dry-run.jsonl", "rejects_file": "rejects.jsonl"}
    (workdir / "config.json").write_text(json.dumps(config))
    with (workdir / "input.jsonl").open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, TARGET_BIN, "--config", "config.json"],
            stdin=stdin, cwd=workdir, capture_output=True, text=True, timeout=600, check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    cpu, peak_kb = done.stderr.rsplit("measured ", 1)[1].split()[:2]
    return float(cpu), int(peak_kb) // 1024, done.stderr


def test_thousands_of_streams_cost_little_cpu_and_memory_each(tmp_path):
    one = [schema_message("s0"), record_message(purchase(0), "s0"), state_message({"n": 1})]
    many = [line for i in range(STREAMS)
            for line in (schema_message(f"s{i}"), record_message(purchase(i), f"s{i}"))]
    cpu_one, peak_one, _ = _measure(tmp_path / "one", one)
    cpu, peak, log = _measure(tmp_path / "many", [*many, state_message({"n": STREAMS})])
    per_stream_kb = (peak - peak_one) * 1024 / STREAMS
    per_stream_ms = (cpu - cpu_one) * 1000 / STREAMS
    print(f"\n[{STREAMS} streams] {cpu:.1f} s CPU ({per_stream_ms:.2f} ms a stream), "
          f"peak {peak} MB ({per_stream_kb:.1f} kB a stream; one stream: {peak_one} MB)")
    bodies = (tmp_path / "many" / "dry-run.jsonl").read_text().splitlines()
    assert sum(len(json.loads(body)["conversion_events"]["events"]) for body in bodies) == STREAMS
    assert per_stream_ms < 2.0, "each stream checked or compiled its schema again"
    assert per_stream_kb < 20
    assert log.count("records skip the SDK's per-record path") == 20  # not 5,000 log lines
