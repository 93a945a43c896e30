"""The mapping process: records mapped in the worker come back as mapped in-process."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import re
import signal
import time

import msgspec
import psutil
import pytest

from target_spotify_conversions.mapping import EventMapper, Mapped, MappingOptions
from target_spotify_conversions.settings import MAX_PROCESSES, default_processes
from target_spotify_conversions.unreadable import MAX_DEPTH, TOO_DEEP
from target_spotify_conversions.wire import StreamChecks
from target_spotify_conversions.worker_pool import (
    STOP_WAIT_SECONDS,
    InlineWorkers,
    MappingProcess,
    MappingProcessError,
    WorkerPool,
    start_workers,
)
from tests.harness import wait_until

OPTIONS = MappingOptions(phone_default_country="US", default_action_source="WEB")
UTC = dt.timezone.utc


def records() -> list[dict[str, object]]:
    base = {
        "spotify_event_name": "purchase",
        "$event_time": "2024-05-01T12:00:00.250Z",
        "email": " Jane.Doe@Example.com ",
        "phone": "(512) 555-0193",
        "$ip": "2001:DB8::1",
        "amount": decimal.Decimal("1234.50"),
        "currency": "usd",
        "content_category": "Apparel & Accessories > Clothing",
    }
    return [
        {**base, "$event_id": "a-1"},
        {**base, "$event_id": 10**25},  # a number id: its digits
        {**base, "$event_time": "2024-05-01T14:00:00+02:00"},  # no id: derived from content
        {**base, "$event_id": "a-4", "amount": decimal.Decimal("1E+2"), "gender": "f"},
        {**base, "$event_id": "a-5", "currency": "ZZZ"},  # rejected
        {**base, "$event_id": "a-6", "email": ["x@example.com", "", "X@example.com"]},
        {**base, "$event_id": "a-7", "phone": "call me"},  # dropped, with a warning
        {"$event_id": "a-8", "event": "Signed Up", "$event_time": 1714564800, "$device_id": "d-8"},
    ]


def in_process(chunk: list[tuple[str, dict[str, object]]]) -> list[tuple[object, ...]]:
    mapper = EventMapper(OPTIONS)
    out = []
    for stream, record in chunk:
        result = mapper.map(record, stream)
        if isinstance(result, Mapped):
            # What the request body will hold: the event as JSON.
            event = msgspec.json.decode(msgspec.json.encode(result.event))
            out.append((result.event_id, event, result.warnings, []))
        else:
            out.append((result.event_id, None, result.warnings, result.reasons))
    return out


def in_worker(chunk: list[tuple[str, dict[str, object]]]) -> list[tuple[object, ...]]:
    process = MappingProcess(OPTIONS)
    try:
        process.submit(chunk)
        mapped = process.take()
    finally:
        process.close()
    return [
        (m.event_id, None if m.body is None else msgspec.json.decode(m.body), list(m.warnings),
         list(m.reasons))
        for m in mapped
    ]


def test_the_worker_maps_as_the_process_itself_would():
    chunk = [("orders", record) for record in records()]
    expected = in_process(chunk)
    assert [row[1] is None for row in expected] == [False] * 4 + [True] + [False] * 3
    assert in_worker(chunk) == expected


@pytest.mark.parametrize("processes", [0, 1])
def test_each_mapped_event_carries_the_time_its_body_holds(processes):
    """The delivery ledger records it from here, without reading it back out of the body."""
    workers = start_workers(OPTIONS, processes)
    try:
        workers.submit([("orders", record) for record in records()])
        mapped = workers.take()
    finally:
        workers.close()
    sent = [m for m in mapped if m.body is not None]
    assert len(sent) == 7
    for m in sent:
        assert m.event_time == msgspec.json.decode(m.body)["event_time"]
    assert {m.event_time for m in mapped if m.body is None} == {""}


def test_a_value_json_cannot_carry_still_maps():
    # A stream map can make any Python value; such a chunk is pickled instead of encoded.
    chunk = [("orders", {**records()[0], "extra": {1, 2}}), ("orders", records()[3])]
    assert in_worker(chunk) == in_process(chunk)


def test_a_datetime_made_by_a_stream_map_maps_as_its_string():
    moment = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    chunk = [("orders", {**records()[0], "$event_time": moment})]
    [(_, event, _, _)] = in_worker(chunk)
    assert event["event_time"] == "2024-05-01T12:00:00.250Z"
    assert in_worker(chunk) == in_process(chunk)


@pytest.mark.parametrize("size", [1, 500, 1201])
def test_results_keep_the_order_of_the_chunk(size):
    chunk = [("orders", {**records()[0], "$event_id": f"id-{n}"}) for n in range(size)]
    assert [row[0] for row in in_worker(chunk)] == [f"id-{n}" for n in range(size)]


def test_chunks_larger_than_the_pipes_do_not_deadlock():
    # Megabyte values (a hostile input) fill both pipes: the main side must read results
    # while it writes, or each side waits for the other forever.
    big = [
        ("orders", {**records()[0], "$event_id": f"big-{n}", "$user_agent": "x" * 3_000_000})
        for n in range(4)
    ]
    process = MappingProcess(OPTIONS)
    try:
        for item in big:
            process.submit([item])
        ids = [process.take()[0].event_id for _ in big]
    finally:
        process.close()
    assert ids == ["big-0", "big-1", "big-2", "big-3"]


def test_a_failure_in_the_worker_stops_the_run_without_quoting_the_record(capfd):
    process = MappingProcess(OPTIONS)
    try:
        process.submit([("orders", ["jane.doe@example.com"])])  # not a record: map() fails
        # AttributeError in pure Python, TypeError where mypyc compiled the mapping.
        with pytest.raises(MappingProcessError, match=r"failed with (AttributeError|TypeError)"):
            process.take()
        process.submit([("orders", records()[0])])  # the worker goes on with the next chunk
        assert process.take()[0].event_id == "a-1"
    finally:
        process.close()
    err = capfd.readouterr().err
    assert re.search("Internal error (AttributeError|TypeError) in the mapping process", err)
    assert "jane.doe" not in err


def test_a_worker_that_dies_is_reported():
    process = MappingProcess(OPTIONS)
    process.submit([("orders", records()[0])])
    process.take()
    os.kill(process.pid, signal.SIGKILL)
    wait_until(
        lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE,
        "the killed worker to end",
    )
    with pytest.raises(MappingProcessError, match=r"ended unexpectedly \(exit code -9\)"):
        process.submit([("orders", records()[0])])  # nobody reads the pipe any more
    process.close()


def test_the_worker_exits_when_its_pipe_is_closed_and_ignores_terminal_signals():
    process = MappingProcess(OPTIONS)
    process.submit([("orders", records()[0])])
    process.take()  # the worker is up
    os.kill(process.pid, signal.SIGTERM)  # ignored: the parent drains first, then closes
    os.kill(process.pid, signal.SIGINT)
    process.submit([("orders", records()[0])])
    assert process.take()[0].event_id == "a-1"
    process.close()
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)  # reaped: gone


def mapped_by(workers, chunks) -> list[tuple[object, ...]]:
    try:
        for chunk in chunks:
            workers.submit(chunk)
        results = [m for _ in chunks for m in workers.take()]
    finally:
        workers.close()
    return [
        (m.event_id, None if m.body is None else msgspec.json.decode(m.body), list(m.warnings),
         list(m.reasons))
        for m in results
    ]


@pytest.mark.parametrize("processes", [0, 1, 3])
def test_any_number_of_workers_maps_chunks_in_the_order_they_were_sent(processes):
    chunks = [
        [("orders", {**record, "$event_id": f"{n}-{i}"}) for i, record in enumerate(records())]
        for n in range(7)
    ]
    expected = [row for chunk in chunks for row in in_process(chunk)]
    workers = start_workers(OPTIONS, processes)
    assert isinstance(workers, InlineWorkers if processes == 0 else WorkerPool)
    assert mapped_by(workers, chunks) == expected


def test_a_pool_runs_one_process_per_worker_and_ends_them_all():
    before = {child.pid for child in psutil.Process().children()}
    pool = start_workers(OPTIONS, 3)
    children = [c for c in psutil.Process().children() if c.pid not in before]
    assert len(children) >= 3
    pool.close()
    assert not any(
        child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
    )


def test_a_failure_mapping_in_process_stops_the_run_as_a_worker_failure_would(capfd):
    workers = start_workers(OPTIONS, 0)
    workers.submit([("orders", ["jane.doe@example.com"])])  # not a record: map() fails
    with pytest.raises(MappingProcessError, match=r"failed with (AttributeError|TypeError)"):
        workers.take()
    assert "jane.doe" not in capfd.readouterr().err


def test_the_default_is_one_worker_per_usable_cpu_but_the_first():
    usable = len(os.sched_getaffinity(0))
    assert default_processes() == min(usable - 1, MAX_PROCESSES)
    original = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(original)})  # as `taskset -c 0` would
        assert default_processes() == 0
    finally:
        os.sched_setaffinity(0, original)


def test_a_worker_is_a_lean_interpreter_in_a_session_of_its_own():
    # A fresh interpreter with the mapping only (no SDK, no HTTP stack): a fraction of the
    # memory of a fork of the reading process; its own session: a Ctrl-C at the terminal
    # reaches the reading process only, which drains the workers before it exits.
    process = MappingProcess(OPTIONS)
    try:
        process.submit([("orders", records()[0])])
        assert process.take()[0].event_id == "a-1"
        worker = psutil.Process(process.pid)
        assert worker.cmdline()[1:3] == ["-I", "-c"]
        assert os.getsid(process.pid) == process.pid != os.getsid(0)
        assert worker.memory_info().rss < 60 * 2**20
    finally:
        process.close()


def test_a_failure_outside_a_chunk_ends_the_worker_without_quoting_what_it_read(capfd):
    from target_spotify_conversions import worker_pool

    process = MappingProcess(OPTIONS)
    try:
        # A stream announcement the worker cannot read (never sent by the target itself).
        bad = b'["orders", {}, ["jane.doe@example.com"], "jane.doe@example.com"]'
        process._write(worker_pool._frame(worker_pool._STREAM, bad))
        def map_a_chunk():  # the submit or the take finds the worker gone
            process.submit([("orders", records()[0])])
            return process.take()

        with pytest.raises(MappingProcessError, match=r"ended unexpectedly \(exit code 1\)"):
            map_a_chunk()
    finally:
        process.close()
    err = capfd.readouterr().err
    assert "Internal error ValidationError in the mapping process" in err
    assert "jane.doe" not in err


def _nested_record(depth: int) -> msgspec.Raw:
    """A record nesting `depth` objects (itself included), as raw JSON."""
    inner = b'{"a": ' * (depth - 2) + b"{}" + b"}" * (depth - 2)
    return msgspec.Raw(b'{"$event_id": "deep", "a": ' + inner + b"}")


def test_a_record_line_nested_past_the_readers_limit_comes_back_too_deep():
    """The reader leaves a RECORD line's depth to the worker: its record may nest 99 levels
    inside the message's one, as on the SDK path; a BATCH line's was bounded as read."""
    def line(depth: int) -> bytes:
        record = bytes(_nested_record(depth))
        return b'{"type":"RECORD","stream":"s","record":' + record + b"}"

    for raw in (False, True):  # lines alone, and among a BATCH line's raw record
        workers = InlineWorkers(OPTIONS)
        workers.add_stream(StreamChecks("s", {"type": "object"}, [], validate=True))
        batch = [("s", _nested_record(MAX_DEPTH + 50), True)] if raw else []
        workers.submit([
            ("s", line(MAX_DEPTH - 1)),
            ("s", line(MAX_DEPTH)),
            ("s", line(MAX_DEPTH + 50)),
            *batch,
        ])
        results = workers.take()
        assert [result.unreadable for result in results] == ["", TOO_DEEP, TOO_DEEP, *[""] * raw]
        assert results[0].event_id == "deep"


# --- a worker that stops answering (issue 19) ---------------------------------------------------


def test_a_stopped_worker_is_named_killed_and_ends_the_wait_within_its_answer_time():
    process = MappingProcess(OPTIONS, number=3, answer_timeout=1.0)
    chunk = [("s", record) for record in records()[:2]]
    process.submit(chunk)
    process.take()  # it answers while it runs
    os.kill(process.pid, signal.SIGSTOP)
    process.submit(chunk)
    started = time.monotonic()
    with pytest.raises(MappingProcessError) as raised:
        process.take()
    waited = time.monotonic() - started
    assert 1.0 <= waited < 5.0
    assert str(raised.value).startswith(
        f"mapping worker 3 (pid {process.pid}) did not answer while mapping a chunk of 2 "
        "records within 1 s"
    )
    assert not psutil.pid_exists(process.pid), "the stopped worker was killed and reaped"
    process.close(abandon=True)


def test_a_stop_request_shortens_the_wait_for_a_stopped_worker():
    process = MappingProcess(OPTIONS, answer_timeout=600.0)
    os.kill(process.pid, signal.SIGSTOP)
    process.submit([("s", records()[0])])
    process.hurry()
    started = time.monotonic()
    with pytest.raises(MappingProcessError, match=r"within 5 s \(mapping_worker_timeout_seconds"):
        process.take()
    assert time.monotonic() - started < STOP_WAIT_SECONDS + 3
    process.close(abandon=True)


def test_closing_a_stopped_worker_kills_it_instead_of_waiting_for_ever():
    process = MappingProcess(OPTIONS, answer_timeout=1.0)
    os.kill(process.pid, signal.SIGSTOP)
    started = time.monotonic()
    process.close()  # not abandoned: it would be waited for, but it never exits by itself
    assert time.monotonic() - started < 5.0
    assert not psutil.pid_exists(process.pid)
