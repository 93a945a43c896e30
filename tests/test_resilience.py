"""At-least-once delivery under the faults a production pipeline meets (kill, outage, 429).

Each test prints its measured outcome (events in, unique at the fake, re-sent, seconds);
`pytest -s` shows them.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time

import psutil

from target_spotify_conversions.sandbox import FakeSpotify
from tests.harness import (
    CONNECTION_ID,
    TOKEN,
    Run,
    assert_no_leaks,
    purchase,
    run_target,
    singer_lines,
    start_target,
    target_config,
    wait_until,
)

EVENTS = 20_000
PER_REQUEST = 200
CONCURRENCY = 2


def _report(name: str, **numbers: object) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


def _records(n: int) -> list[dict]:
    return [purchase(i) for i in range(n)]


def _interrupted_run(fake, tmp_path, sig: int) -> tuple[Run, float]:
    """Start a 20k-event run, send `sig` once about 40% has arrived, return what it wrote."""
    fake.configure(latency=0.03)
    lines = singer_lines(_records(EVENTS), state_every=100)
    config = target_config(fake.url, events_per_request=PER_REQUEST,
                           max_concurrent_requests=CONCURRENCY)
    started = time.monotonic()
    process = start_target(tmp_path / "first", config, lines)
    wait_until(lambda: fake.unique_count >= EVENTS * 0.4, "40% of the events at the fake",
               timeout=60)
    workers = psutil.Process(process.pid).children()
    assert workers, "the mapping runs in a child process"
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == [], "the mapping process outlived the target"
    run = Run(process.returncode, stdout, stderr, tmp_path / "first", config)
    assert_no_leaks(run, lines)
    return run, time.monotonic() - started


def _resume(fake, tmp_path, first: Run) -> Run:
    """Feed the input again from the last STATE the interrupted run wrote."""
    position = first.states[-1]["position"] if first.states else 0
    rest = _records(EVENTS)[position:]
    config = target_config(fake.url, events_per_request=PER_REQUEST)
    lines = singer_lines(rest, state_every=100)
    return run_target(tmp_path / "second", config, lines)


def _check_every_state_was_delivered(fake, run: Run) -> None:
    delivered = fake.accepted_ids()
    for state in run.states:
        missing = [i for i in range(state["position"]) if f"ord-{i}" not in delivered]
        assert not missing, f"STATE {state} covers undelivered events"


def test_sigkill_mid_run_then_resume_loses_nothing(fake, tmp_path):
    first, seconds = _interrupted_run(fake, tmp_path, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    assert first.states, "checkpoints were written before the kill"
    _check_every_state_was_delivered(fake, first)
    delivered_before = fake.accepted_count
    second = _resume(fake, tmp_path, first)

    assert second.returncode == 0, second.stderr[-2000:]
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(EVENTS)}
    resent = fake.accepted_count - EVENTS
    bound = (2 * CONCURRENCY + 1) * PER_REQUEST + 100
    _report("sigkill", events_in=EVENTS, unique_at_fake=fake.unique_count, resent=resent,
            delivered_before_kill=delivered_before, last_state=first.states[-1]["position"],
            seconds=round(seconds, 1))
    assert resent <= bound, f"re-sent {resent}, more than the in-flight window {bound}"


def test_sigterm_delivers_what_was_read_writes_state_and_exits_143(fake, tmp_path):
    first, seconds = _interrupted_run(fake, tmp_path, signal.SIGTERM)
    assert first.returncode == 128 + signal.SIGTERM, first.stderr[-2000:]
    assert "stopped by signal 15" in first.stderr
    _check_every_state_was_delivered(fake, first)
    read = first.count("records read")
    assert first.count("events delivered") == read, "everything read was delivered"
    assert first.states[-1]["position"] >= read - 100, "the final STATE covers what was read"
    second = _resume(fake, tmp_path, first)

    assert second.returncode == 0
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(EVENTS)}
    resent = fake.accepted_count - EVENTS
    _report("sigterm", events_in=EVENTS, read_before_signal=read,
            unique_at_fake=fake.unique_count, resent=resent, seconds=round(seconds, 1))
    assert resent <= 100, "only records after the tap's last STATE are sent twice"


def test_one_state_per_request_with_one_stream(fake, tmp_path):
    # Answers take a little time, as real ones do: an instant fake lets the target read the
    # whole input while the first answers arrive, and the STATEs they allow are then rightly
    # written as one (the newest safe STATE supersedes the older ones).
    fake.configure(latency=0.02)
    records = _records(5000)
    config = target_config(fake.url, events_per_request=250, max_concurrent_requests=4)
    run = run_target(tmp_path / "run", config, singer_lines(records, state_every=50))
    positions = [state["position"] for state in run.states]
    gaps = [b - a for a, b in itertools.pairwise(positions)]
    _report("checkpoints", events_in=5000, states=len(positions), largest_gap=max(gaps))
    assert positions[-1] == 5000
    assert max(gaps) <= 250 * 2 * 4, "a STATE follows each finished request, not only the end"
    assert len(positions) >= 5000 // 250 // 2


def test_a_30_second_outage_is_waited_out(fake, tmp_path):
    fake.outage(30)
    started = time.monotonic()
    # The defaults: the retry schedule waits at least 151.5 s before it gives up (test_retries).
    config = target_config(fake.url, events_per_request=100)
    run = run_target(tmp_path / "run", config, singer_lines(_records(1000), state_every=100),
                     timeout=400)
    seconds = time.monotonic() - started
    _report("outage-30s", events_in=1000, unique_at_fake=fake.unique_count,
            retries=run.summary().get("requests"), seconds=round(seconds, 1))
    assert run.returncode == 0, run.stderr[-2000:]
    assert seconds >= 30
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(1000)}
    assert run.states[-1] == {"position": 1000}


def test_refused_connections_at_the_start_are_ridden_out_with_defaults(tmp_path):
    """Nothing listens for the first seconds (a deploy, a network cut); the run waits and
    delivers all. 10 s here; that the defaults ride out 151.5 s of refusals whatever the jitter
    is the schedule's test (test_retries); the 90-second outage is a benchmark scenario."""
    with FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID, refuse_for=10) as fake:
        started = time.monotonic()
        config = target_config(fake.url, summary_file="report.json")
        run = run_target(tmp_path / "run", config, singer_lines(_records(3000), state_every=100),
                         timeout=300)
        seconds = time.monotonic() - started
        _report("refused-10s", events_in=3000, unique_at_fake=fake.unique_count,
                seconds=round(seconds, 1))
        assert run.returncode == 0, run.stderr[-2000:]
        assert seconds >= 10
        assert "connection refused" in run.stderr
        assert fake.accepted_ids() == {f"ord-{i}" for i in range(3000)}
        assert run.states[-1] == {"position": 3000}
        report = json.loads((run.workdir / "report.json").read_text())
        assert report["retries"] >= 1
        assert all(request.status == 200 for request in fake.requests)
        # every try counted: those refused (each followed by a retry) and those answered
        assert report["requests"] == len(fake.requests) + report["retries"]
        assert fake.contract_violations == []


def test_in_flight_requests_grow_past_four_against_a_slow_api(fake, tmp_path):
    fake.configure(latency=0.2)
    config = target_config(fake.url, events_per_request=50, summary_file="report.json")
    run = run_target(tmp_path / "run", config, singer_lines(_records(10_000), state_every=500),
                     timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(10_000)}
    report = json.loads((run.workdir / "report.json").read_text())
    flight = report["in_flight"]
    _report("slow-api", requests=report["requests"], in_flight=flight,
            latency=report["answer_latency_seconds"])
    assert flight["max"] > 8, "past where it starts"
    assert (flight["limit_min"], flight["cap"], flight["adaptive"]) == (8, 48, True)
    assert flight["limit_max"] > 8
    assert report["answer_latency_seconds"]["median"] >= 0.2
    summary = run.summary()
    assert summary["requests in flight"].startswith("median ")
    assert "(adaptive, cap 48)" in summary["requests in flight"]
    assert summary["answer latency"].startswith("median 0.2")


def test_a_fixed_number_in_flight_when_adaptive_concurrency_is_off(fake, tmp_path):
    fake.configure(latency=0.1)
    config = target_config(fake.url, events_per_request=50, max_concurrent_requests=3,
                           adaptive_concurrency=False, summary_file="report.json")
    run = run_target(tmp_path / "run", config, singer_lines(_records(3000)), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    flight = json.loads((run.workdir / "report.json").read_text())["in_flight"]
    assert (flight["max"], flight["limit_min"], flight["limit_max"]) == (3, 3, 3)
    assert flight["adaptive"] is False


def test_a_rate_limited_api_gets_everything_without_a_request_too_early(fake, tmp_path):
    fake.configure(latency=0.05, events_per_second=2000)
    config = target_config(fake.url, events_per_request=100, summary_file="report.json")
    run = run_target(tmp_path / "run", config, singer_lines(_records(8000), state_every=200),
                     timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    throttled = sum(1 for request in fake.requests if request.status == 429)
    report = json.loads((run.workdir / "report.json").read_text())
    _report("rate-limited", requests=len(fake.requests), answered_429=throttled,
            in_flight=report["in_flight"])
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(8000)}
    assert fake.retry_after_violations == []
    assert throttled >= 1, "the test must reach the limit"
    assert report["answered_429"] == throttled
    assert report["retries"] == throttled
    assert report["requests"] == len(fake.requests)
    assert run.summary()["requests answered 429 (rate limited)"] == str(throttled)
    _check_every_state_was_delivered(fake, run)


def test_an_outage_that_never_ends_fails_the_run_without_overstating_state(fake, tmp_path):
    def break_after_some_delivery() -> None:
        deadline = time.monotonic() + 30
        while fake.unique_count < 1000 and time.monotonic() < deadline:
            time.sleep(0.005)
        fake.always(503)

    fake.configure(latency=0.02)
    threading.Thread(target=break_after_some_delivery, daemon=True).start()
    started = time.monotonic()
    config = target_config(fake.url, events_per_request=100, max_retries=3)
    run = run_target(tmp_path / "run", config, singer_lines(_records(5000), state_every=50),
                     timeout=300)
    seconds = time.monotonic() - started
    _report("outage-forever", events_in=5000, unique_at_fake=fake.unique_count,
            last_state=run.states[-1]["position"] if run.states else None,
            seconds=round(seconds, 1))
    assert run.returncode == 1
    assert "gave up on a request" in run.stderr
    assert "HTTP 503" in run.stderr
    assert "Traceback" not in run.stderr
    _check_every_state_was_delivered(fake, run)
    assert fake.unique_count < 5000


def test_a_429_storm_slows_every_request_down_until_retry_after(fake, tmp_path):
    fake.configure(p_429=0.3, retry_after=1.0)
    config = target_config(fake.url, events_per_request=50, max_concurrent_requests=4,
                           max_retries=12)
    started = time.monotonic()
    run = run_target(tmp_path / "run", config, singer_lines(_records(2000)), timeout=300)
    seconds = time.monotonic() - started
    storms = sum(1 for request in fake.requests if request.status == 429)
    _report("429-storm", events_in=2000, unique_at_fake=fake.unique_count, answered_429=storms,
            early_requests=len(fake.retry_after_violations), seconds=round(seconds, 1))
    assert run.returncode == 0, run.stderr[-2000:]
    assert storms >= 5
    assert fake.retry_after_violations == [], "a request came before the announced time"
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(2000)}


def test_states_that_arrive_before_any_record_are_passed_on(fake, tmp_path):
    lines = [json.dumps({"type": "STATE", "value": {"position": 0}}),
             *singer_lines(_records(3), state_every=3)]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.states == [{"position": 0}, {"position": 3}]


def test_sigterm_while_the_tap_is_idle_stops_at_once_with_a_final_state(fake, tmp_path):
    """A quiet tap: what was read goes out after batch_wait_limit_seconds without more input,
    and SIGTERM while the tap stays silent ends the run at once, not at the next line."""
    config = target_config(fake.url, events_per_request=500, batch_wait_limit_seconds=1)
    process = start_target(tmp_path / "run", config)
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    # The last line is no Singer message: its rejection is logged once the partial chunk
    # before it was mapped, so that log line shows every line before it has been read too.
    lines = [*singer_lines(_records(30), state_every=10), "not a Singer message"]
    last_read = f'event_id "line-{len(lines)}"'
    logged: list[str] = []

    def read_stderr() -> None:
        for line in process.stderr:
            logged.append(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    process.stdin.write("\n".join(lines) + "\n")
    process.stdin.flush()
    # The 30 events wait less than a fuller request would take: the quiet tap sends nothing
    # more, and they go out after a second.
    wait_until(lambda: any(last_read in line for line in logged), "the last line to be read")
    wait_until(lambda: fake.unique_count == 30, "the held events at the fake")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    seconds = time.monotonic() - started
    stdout = process.stdout.read()
    reader.join(timeout=10)
    for pipe in (process.stdin, process.stdout, process.stderr):
        pipe.close()
    run = Run(process.returncode, stdout, "".join(logged), tmp_path / "run", config)
    assert_no_leaks(run, lines)
    _report("sigterm-idle", events_in=30, unique_at_fake=fake.unique_count,
            seconds_to_exit=round(seconds, 2))
    assert run.returncode == 128 + signal.SIGTERM, run.stderr[-2000:]
    assert seconds < 5
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(30)}
    assert run.states[-1] == {"position": 30}


def test_sigint_then_sigterm_is_one_stop_that_loses_nothing(fake, tmp_path):
    """Ctrl-C under `meltano run` sends SIGINT, then SIGTERM: the second must not cut the stop."""
    fake.configure(latency=0.03)
    lines = singer_lines(_records(EVENTS), state_every=100)
    config = target_config(fake.url, events_per_request=PER_REQUEST,
                           max_concurrent_requests=CONCURRENCY)
    process = start_target(tmp_path / "first", config, lines)
    wait_until(lambda: fake.unique_count >= EVENTS * 0.2, "20% of the events at the fake",
               timeout=60)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    first = Run(process.returncode, stdout, stderr, tmp_path / "first", config)
    assert_no_leaks(first, lines)

    assert first.returncode == 128 + signal.SIGINT, stderr[-2000:]
    assert "stopped by signal 2" in first.summary()["outcome"]
    _check_every_state_was_delivered(fake, first)
    read = first.count("records read")
    assert first.count("events delivered") == read, "everything read was delivered"
    assert first.states[-1]["position"] >= read - 100, "the final STATE covers what was read"
    second = _resume(fake, tmp_path, first)
    assert second.returncode == 0
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(EVENTS)}
    _report("sigint+sigterm", events_in=EVENTS, read_before_signal=read,
            resent=fake.accepted_count - EVENTS)


def test_sigterm_during_an_outage_ends_within_the_request_timeout(fake, tmp_path):
    """No more retries after a stop: it ends in seconds, not after the whole retry schedule."""
    def fail_after_some_delivery() -> None:
        deadline = time.monotonic() + 30
        while fake.unique_count < 1000 and time.monotonic() < deadline:
            time.sleep(0.005)
        fake.always(503)

    fake.configure(latency=0.02)
    threading.Thread(target=fail_after_some_delivery, daemon=True).start()
    config = target_config(fake.url, events_per_request=100, request_timeout=5)
    lines = singer_lines(_records(5000), state_every=50)
    process = start_target(tmp_path / "run", config, lines)
    wait_until(lambda: any(r.status == 503 for r in fake.requests), "a 503 from the fake",
               timeout=60)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    seconds = time.monotonic() - started
    run = Run(process.returncode, stdout, stderr, tmp_path / "run", config)
    assert_no_leaks(run, lines)
    _report("sigterm-outage", events_in=5000, unique_at_fake=fake.unique_count,
            seconds_to_exit=round(seconds, 1))
    assert run.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert seconds < 15
    assert "stopped by signal 15" in run.summary()["outcome"]
    assert "Traceback" not in stderr
    _check_every_state_was_delivered(fake, run)
    assert fake.unique_count < 5000
