"""Batching, request limits and 400/413 splitting, with the real client against the fake."""

from __future__ import annotations

import json
import threading
import time

from target_spotify_conversions.client import CapiClient
from target_spotify_conversions.concurrency import START, ConcurrencyLimit
from target_spotify_conversions.delivery import Delivery, Outcome, Pending
from target_spotify_conversions.transport import DryRunFile
from tests.harness import CONNECTION_ID, TOKEN


def pending(i: int, padding: int = 0) -> Pending:
    event = {
        "event_name": "VIEW", "event_id": f"e-{i}", "event_time": "2026-01-01T00:00:00.000Z",
        "user_data": {"ip_address": "203.0.113.1", "device_id": "d" * (1 + padding)},
        "opt_out_targeting": True,
    }
    return Pending("s", f"e-{i}", json.dumps(event).encode(), {"$event_id": f"e-{i}"},
                   event_time=event["event_time"])


def delivery(transport, outcomes: list[Outcome], per_request: int = 10) -> Delivery:
    return Delivery(transport, CONNECTION_ID, events_per_request=per_request,
                    max_concurrent_requests=2, on_outcome=outcomes.append)


def test_requests_hold_at_most_events_per_request(fake):
    outcomes = []
    sender = delivery(CapiClient(fake.url, TOKEN), outcomes, per_request=10)
    for i in range(25):
        sender.add(i, pending(i))
    sender.drain()
    sender.close()
    assert sorted(len(r.event_ids) for r in fake.requests) == [5, 10, 10]  # concurrent
    assert sum(o.delivered for o in outcomes) == 25


def test_requests_stay_under_one_megabyte(fake):
    outcomes = []
    sender = delivery(CapiClient(fake.url, TOKEN), outcomes, per_request=1000)
    for i in range(30):
        sender.add(i, pending(i, padding=100_000))
    sender.drain()
    sender.close()
    assert all(r.body_size <= 1_000_000 for r in fake.requests)
    assert len(fake.requests) == 4
    assert len(fake.accepted_ids()) == 30


def test_an_event_that_alone_exceeds_the_limit_is_not_queued(tmp_path):
    from target_spotify_conversions.transport import MAX_BODY_BYTES, body_of

    alone = len(body_of(CONNECTION_ID, [pending(0).body]))  # a request of one unpadded event
    sender = delivery(DryRunFile(str(tmp_path / "dry.jsonl")), [], per_request=1)
    assert sender.add(0, pending(1, padding=10_000))
    assert not sender.add(1, pending(2, padding=MAX_BODY_BYTES - alone + 1))  # a byte over
    assert sender.add(2, pending(3, padding=MAX_BODY_BYTES - alone))  # exactly the limit
    sender.drain()
    sender.close()
    lines = (tmp_path / "dry.jsonl").read_bytes().splitlines()
    assert [[event["event_id"] for event in json.loads(line)["conversion_events"]["events"]]
            for line in lines] == [["e-1"], ["e-3"]]
    assert len(lines[1]) == MAX_BODY_BYTES


def test_400_bisection_isolates_each_refused_event(fake):
    fake.reject_events({"e-3", "e-17"})
    outcomes = []
    sender = delivery(CapiClient(fake.url, TOKEN), outcomes, per_request=20)
    for i in range(20):
        sender.add(i, pending(i))
    sender.drain()
    sender.close()
    refused = [(item.event_id, problem.code) for o in outcomes for item, problem in o.refused]
    assert sorted(refused) == [("e-17", "api_rejected"), ("e-3", "api_rejected")]
    assert len(fake.accepted_ids()) == 18
    assert len(fake.requests) < 20, "bisection, not one request per event"


def test_the_oldest_unfinished_record_is_that_of_the_oldest_open_request(fake):
    fake.configure(latency=0.3)
    outcomes = []
    sender = delivery(CapiClient(fake.url, TOKEN), outcomes, per_request=5)
    assert sender.oldest_unfinished() is None
    for i in range(7):
        sender.add(10 + i, pending(i))  # records 10-14 sent, 15-16 still queued
    assert sender.oldest_unfinished() == 10, "the request with records 10-14 is in flight"
    sender.drain()
    assert sender.oldest_unfinished() is None
    sender.close()
    assert sum(o.delivered for o in outcomes) == 7


def test_dry_run_writes_each_body_as_one_line(tmp_path):
    path = tmp_path / "out" / "dry.jsonl"
    transport = DryRunFile(str(path))
    sender = delivery(transport, [], per_request=4)
    for i in range(6):
        sender.add(i, pending(i))
    sender.drain()
    sender.close()
    transport.close()
    bodies = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(len(b["conversion_events"]["events"]) for b in bodies) == [2, 4]
    assert bodies[0]["conversion_events"]["capi_connection_id"] == CONNECTION_ID


def queued_while_the_api_is_slow(fake, limit) -> int:
    """How many one-event requests reading may queue (sent or waiting) while a slow API has
    answered none of them."""
    fake.configure(latency=3.0)
    client = CapiClient(fake.url, TOKEN, limit=limit)
    sender = Delivery(client, CONNECTION_ID, events_per_request=1, max_concurrent_requests=48,
                      on_outcome=lambda _: None, limit=limit)
    added = []

    def read() -> None:
        for i in range(100):
            sender.add(i, pending(i))
            added.append(i)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(1.5)  # no answer yet: reading has stopped where the queue is full
    queued = len(added)
    fake.configure()
    reader.join(timeout=30)
    sender.drain()
    sender.close()
    client.close()
    assert len(fake.accepted_ids()) == 100
    return queued


def test_reading_runs_ahead_while_the_limit_grows_from_its_start(fake):
    limit = ConcurrencyLimit(48)  # starts at 8
    assert queued_while_the_api_is_slow(fake, limit) == 2 * 4 * START


def test_after_a_sign_of_trouble_reading_queues_twice_the_limit_only(fake):
    limit = ConcurrencyLimit(48)
    limit.release(limit.acquire(), ok=False)  # a 5xx: cut to 4, and the API is in trouble
    assert queued_while_the_api_is_slow(fake, limit) == 2 * START
