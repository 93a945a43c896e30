"""Every stop bounded: a mapping worker that stops answering, and a stop signal whatever a worker
does, end the run in bounded time and leave no process behind (issue 19)."""

from __future__ import annotations

import re
import signal
import time

import psutil

from tests.harness import (
    Run,
    assert_no_leaks,
    purchase,
    record_message,
    schema_message,
    start_target,
    state_message,
    target_config,
    wait_until,
)


def _stopped_workers(process) -> list[psutil.Process]:
    """Wait for the target's two mapping workers, then stop them (SIGSTOP: a stalled process).

    Only once both run the worker: a child stopped between fork and exec would hold the
    target in its vfork wait, which no signal interrupts, and no user can do that."""
    target = psutil.Process(process.pid)

    def started() -> list[psutil.Process] | None:
        try:
            running = [c for c in target.children() if "worker_main" in " ".join(c.cmdline())]
        except psutil.Error:  # a child between fork and exec may change under our eyes
            return None
        return running if len(running) == 2 else None

    workers = wait_until(started, "the two mapping workers")
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    return workers


def _feed(process, lines: list[str]) -> None:
    process.stdin.write("\n".join(lines) + "\n")
    process.stdin.flush()


def _lines(count: int) -> list[str]:
    return [schema_message(), *(record_message(purchase(i)) for i in range(count)),
            state_message({"position": count})]


def test_a_stopped_worker_ends_the_run_naming_it_and_leaves_no_process(fake, tmp_path):
    config = target_config(fake.url, mapping_processes=2, mapping_worker_timeout_seconds=2,
                           events_per_request=10)
    process = start_target(tmp_path / "run", config)
    workers = _stopped_workers(process)
    lines = _lines(200)
    started = time.monotonic()
    _feed(process, lines)
    stdout, stderr = process.communicate(timeout=60)  # stdin stays open until it ends
    took = time.monotonic() - started
    assert process.returncode == 1, stderr[-2000:]
    named = re.search(r"mapping worker (\d) \(pid (\d+)\) did not answer while mapping a chunk "
                      r"of 10 records within 2 s", stderr)
    assert named, stderr[-2000:]
    assert int(named[2]) in {worker.pid for worker in workers}
    assert took < 15, f"the run took {took:.1f} s to notice"
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == [], "a stopped worker was left behind"
    run = Run(process.returncode, stdout, stderr, tmp_path / "run", config)
    assert run.states == []
    assert fake.requests == []
    assert "Internal error" not in stderr
    assert_no_leaks(run, lines)


def test_a_stop_signal_ends_the_run_in_bounded_time_whatever_the_workers_do(fake, tmp_path):
    config = target_config(fake.url, mapping_processes=2, mapping_worker_timeout_seconds=600,
                           events_per_request=10, request_timeout=5)
    process = start_target(tmp_path / "run", config)
    workers = _stopped_workers(process)
    lines = _lines(200)
    _feed(process, lines)
    time.sleep(1.0)  # the reading process now waits for a worker that will never answer
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    took = time.monotonic() - started
    print(f"\n[stop with stopped workers] ended {took:.1f} s after SIGTERM")
    assert took < 5 + 10, f"the stop took {took:.1f} s (request_timeout 5 s)"
    assert process.returncode == 128 + signal.SIGTERM, "the exit code says the run was stopped"
    assert "Signal 15: reading stops" in stderr
    assert "did not answer while mapping a chunk of 10 records within 5 s" in stderr
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == [], "a stopped worker was left behind"
    run = Run(process.returncode, stdout, stderr, tmp_path / "run", config)
    assert run.states == []
    assert_no_leaks(run, lines)
