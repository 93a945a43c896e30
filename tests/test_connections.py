"""Several Spotify connections in one run: the real CLI against the fake, which knows each
token's connection and records which connection each accepted event came in for."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from target_spotify_conversions.sandbox import FakeSpotify, check_body
from tests.harness import (
    CONNECTION_ID,
    SCHEMA,
    TOKEN,
    purchase,
    record_message,
    run_target,
    schema_message,
    singer_lines,
    start_target,
    state_message,
    target_config,
    wait_until,
)

ID_A = "11111111-2222-4333-8444-555555555555"
ID_B = "66666666-7777-4888-9999-aaaaaaaaaaaa"
TOKEN_A = "tok-brand-a-5f0c1e77d3"
TOKEN_B = "tok-brand-b-9d2a7b11c8"
CONNECTIONS = {
    "brand_a": {"capi_connection_id": ID_A, "auth_token": TOKEN_A},
    "brand_b": {"capi_connection_id": ID_B, "auth_token": TOKEN_B},
}
# The schema of the test streams, with the routing property.
BRAND_SCHEMA = {
    **SCHEMA,
    "properties": {**SCHEMA["properties"], "brand": {"type": ["string", "null"]}},
}


@pytest.fixture
def brands() -> Iterator[FakeSpotify]:
    """The fake with three pairs: the harness's (the top-level connection), brand_a, brand_b."""
    credentials = {TOKEN_A: ID_A, TOKEN_B: ID_B}
    with FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID, credentials=credentials) as fake:
        yield fake
        assert fake.contract_violations == []


def brand_config(url: str | None, **settings: Any) -> dict[str, Any]:
    routing = {
        "connections": CONNECTIONS,
        "connection_property": "brand",
        "stream_connections": {"brand_b_orders": "brand_b"},
    }
    return target_config(url, **{**routing, **settings})


def mixed_input(default: bool = True) -> tuple[list[str], dict[str, set[str]], set[str]]:
    """Two streams routed by property, by stream and by default (when there is a `default`
    connection), with unroutable records: the lines, the event ids each connection id must
    receive, and the ids to reject."""
    lines = [schema_message("orders", BRAND_SCHEMA), schema_message("brand_b_orders", BRAND_SCHEMA)]
    expected: dict[str, set[str]] = {ID_A: set(), ID_B: set()}
    if default:
        expected[CONNECTION_ID.lower()] = set()
    rejected: set[str] = set()

    def add(i: int, stream: str, brand: Any, to: str | None, **extra: Any) -> None:
        record = purchase(i, **extra)
        if brand is not None:
            record["brand"] = brand
        lines.append(record_message(record, stream))
        (expected[to] if to else rejected).add(f"ord-{i}")

    for i in range(0, 60, 6):
        add(i, "orders", "brand_a", ID_A)  # by property
        add(i + 1, "orders", "brand_b", ID_B)  # by property
        add(i + 2, "orders", None, CONNECTION_ID.lower() if default else None)  # by default
        add(i + 3, "brand_b_orders", None, ID_B)  # by stream
        add(i + 4, "brand_b_orders", "brand_a", ID_A)  # the property wins over the stream
        add(i + 5, "orders", "brand_z", None)  # names no connection
    add(100, "orders", "jane.shifted@example.com", None)  # a shifted column: not shown
    add(101, "orders", "brand_b", None, **{"$ip": 5})  # fails the tap's schema; routed
    lines.append(state_message({"position": "end"}))
    return lines, expected, rejected


@pytest.mark.parametrize("path", ["lean", "sdk", "inline"])
def test_each_connection_receives_exactly_its_events(brands, tmp_path, path):
    lines, expected, rejected = mixed_input()
    # A stream map makes the SDK decode each record (its path); without one, records go
    # undecoded to the mapping workers (the lean path), which route them. Inline: the
    # reading process maps (and routes) them itself.
    settings: dict[str, Any] = {
        "lean": {},
        "sdk": {"stream_maps": {"orders": {"extra": "'x'"}}},
        "inline": {"mapping_processes": 0},
    }[path]
    config = brand_config(brands.url, summary_file="summary.json", events_per_request=7, **settings)
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 0, run.stderr[-2000:]

    assert {cid: ids for cid, ids in brands.accepted_ids_by_connection().items() if ids} == expected
    assert run.states == [{"position": "end"}]
    by_id = {line["event_id"]: line for line in run.rejects()}
    assert set(by_id) == rejected
    assert "unknown_connection" in by_id["ord-5"]["reasons"][0]
    assert "'brand_z'" in by_id["ord-5"]["reasons"][0]
    assert by_id["ord-5"]["connection"] is None
    shifted = by_id["ord-100"]["reasons"][0]
    assert "example.com" not in shifted
    assert "a string of 24 characters" in shifted
    assert by_id["ord-101"]["connection"] == "brand_b"  # the rejects file names the route
    assert run.count("rejected unknown_connection") == 11

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    per = summary["connections"]
    assert per["brand_a"]["events_delivered"] == len(expected[ID_A])
    assert per["brand_b"]["events_delivered"] == len(expected[ID_B])
    assert per["default"]["events_delivered"] == len(expected[CONNECTION_ID.lower()])
    assert per["brand_b"]["records_rejected"] == 1
    assert per["brand_a"]["identifier_coverage"]["hashed_emails"] == 1.0
    assert per["brand_a"]["requests"] >= 3  # 20 events, at most 7 a request
    assert run.count("connection brand_a") == len(expected[ID_A])
    assert run.count("connection brand_b") == len(expected[ID_B])
    for token in (TOKEN, TOKEN_A, TOKEN_B):  # also checked for every file by run_target
        assert token not in run.stderr


def test_two_connections_alone_reject_what_routes_to_neither(tmp_path):
    """The check the issue names: two connections and no top-level pair; routed by property
    and by stream, each connection gets exactly its events, the rest is rejected."""
    lines, expected, rejected = mixed_input(default=False)
    config = brand_config(None, rejects_file="rejects.jsonl")
    del config["capi_connection_id"], config["auth_token"]
    with FakeSpotify(token=TOKEN_A, connection_id=ID_A, credentials={TOKEN_B: ID_B}) as fake:
        config["api_url"] = fake.url
        run = run_target(tmp_path / "run", config, lines)
        assert fake.contract_violations == []
    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.accepted_ids_by_connection() == expected
    assert {line["event_id"] for line in run.rejects()} == rejected
    assert run.count("rejected unknown_connection") == 21  # 10 brand_z, 10 unrouted, 1 email
    unrouted = next(line for line in run.rejects() if line["event_id"] == "ord-2")
    assert "no connection: brand is absent" in unrouted["reasons"][0]
    for token in (TOKEN_A, TOKEN_B):
        assert token not in run.stderr + run.stdout


def test_a_wrong_token_for_one_connection_stops_the_run_naming_it(brands, tmp_path):
    wrong = {**CONNECTIONS, "brand_b": {"capi_connection_id": ID_B, "auth_token": "tok-wrong-1"}}
    lines = [schema_message("orders", BRAND_SCHEMA)]
    for i in range(200):
        record = purchase(i, brand="brand_b" if i >= 100 else "brand_a")
        lines.append(record_message(record, "orders"))
        if i % 10 == 9:
            lines.append(state_message({"position": i + 1}))
    config = target_config(
        brands.url, connections=wrong, connection_property="brand", events_per_request=10
    )
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 1
    assert "connection 'brand_b'" in run.stderr
    assert "HTTP 401" in run.stderr
    assert "Traceback" not in run.stderr
    assert "tok-wrong-1" not in run.stderr
    delivered = brands.accepted_ids()
    assert not any(f"ord-{i}" in delivered for i in range(100, 200))
    for state in run.states:  # no STATE past what was delivered
        assert state["position"] <= 100
        assert all(f"ord-{i}" in delivered for i in range(state["position"]))


def test_a_failing_run_counts_every_event_another_connection_had_acknowledged(
    brands, tmp_path
):
    """When brand_b's 401 stops the run, brand_a's requests that were already answered 2xx
    are in the ledger: the summary counts them too, and no cut request is logged as a
    retry."""
    import sqlite3

    brands.configure(latency=0.05)
    wrong = {**CONNECTIONS, "brand_b": {"capi_connection_id": ID_B, "auth_token": "tok-wrong-1"}}
    lines = [schema_message("orders", BRAND_SCHEMA)]
    for i in range(3000):
        brand = "brand_b" if i % 10 == 9 else "brand_a"
        lines.append(record_message(purchase(i, brand=brand), "orders"))
    config = target_config(brands.url, connections=wrong, connection_property="brand",
                           events_per_request=50, summary_file="summary.json")
    for attempt in range(3):
        work = tmp_path / f"run{attempt}"
        run = run_target(work, config, lines)
        assert run.returncode == 1
        assert "HTTP 401" in run.stderr
        assert "retry" not in run.stderr
        with sqlite3.connect(work / "spotify-conversions-ledger.sqlite") as ledger:
            held = ledger.execute(
                "SELECT count(*) FROM (SELECT connection, event_id FROM ledger_delivered"
                " UNION SELECT connection, event_id FROM ledger_appended) AS e"
                " JOIN ledger_connections AS c ON c.id = e.connection WHERE c.connection_id = ?",
                (ID_A,),
            ).fetchone()[0]
        summary = json.loads((work / "summary.json").read_text())
        assert summary["connections"]["brand_a"]["events_delivered"] == held
        assert summary["events_delivered"] == held


def test_state_never_passes_delivery_with_several_connections_in_flight(brands, tmp_path):
    brands.configure(latency=0.03)
    names = ["brand_a", "brand_b", None]
    records = [purchase(i, brand=names[(i // 7) % 3]) for i in range(600)]
    lines = [schema_message("orders", BRAND_SCHEMA)]
    for n, record in enumerate(records, 1):
        lines.append(record_message(record, "orders"))
        if n % 25 == 0:
            lines.append(state_message({"position": n}))
    config = brand_config(brands.url, events_per_request=20, max_concurrent_requests=2)
    process = start_target(tmp_path / "run", config, lines)
    assert process.stdout is not None
    states = []
    for line in process.stdout:
        position = json.loads(line)["position"]
        delivered = brands.accepted_ids()
        missing = [i for i in range(position) if f"ord-{i}" not in delivered]
        assert not missing, f"STATE {position} written before events {missing[:5]} arrived"
        states.append(position)
    assert process.wait(timeout=120) == 0
    assert states[-1] == 600
    assert len(states) >= 4, "checkpoints are written while the run goes on"
    by_connection = brands.accepted_ids_by_connection()
    for name, connection_id in (("brand_a", ID_A), ("brand_b", ID_B)):
        sent = {record["$event_id"] for record in records if record.get("brand") == name}
        assert by_connection[connection_id] == sent


def test_one_connections_retry_after_does_not_hold_the_others(brands, tmp_path):
    hold = 6
    brands.configure(latency=0.1)
    brands.fail_next(1, 429, retry_after=hold)
    first = [schema_message("orders", BRAND_SCHEMA)]
    first += [record_message(purchase(i, brand="brand_a"), "orders") for i in range(10)]
    rest = [record_message(purchase(i, brand="brand_b"), "orders") for i in range(10, 90)]
    config = brand_config(
        brands.url, events_per_request=10, max_concurrent_requests=1, batch_wait_limit_seconds=0.2
    )
    process = start_target(tmp_path / "run", config)
    assert process.stdin is not None
    process.stdin.write("\n".join(first) + "\n")
    process.stdin.flush()
    wait_until(lambda: [r for r in brands.requests if r.status == 429], "brand_a's 429", 60)
    _, stderr = process.communicate("\n".join(rest) + "\n", timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    [held] = [request for request in brands.requests if request.status == 429]
    assert held.connection_id == ID_A
    others = [
        request
        for request in brands.requests
        if request.status == 200 and held.answered < request.arrival < held.answered + hold
    ]
    assert {request.connection_id for request in others} == {ID_B}
    assert others, "the other connection waited for a Retry-After it was not given"
    assert brands.retry_after_violations == []
    assert len(brands.accepted_ids()) == 90


def test_a_dry_run_writes_each_connections_bodies_to_its_own_file(tmp_path):
    lines, expected, _ = mixed_input()
    config = brand_config(None, dry_run=True)
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 0, run.stderr[-2000:]
    files = {
        ID_A: tmp_path / "run" / "dry-run.brand_a.jsonl",
        ID_B: tmp_path / "run" / "dry-run.brand_b.jsonl",
        CONNECTION_ID.lower(): tmp_path / "run" / "dry-run.jsonl",
    }
    for connection_id, path in files.items():
        bodies = [json.loads(line) for line in path.read_text().splitlines()]
        ids = set()
        for body in bodies:  # each line is exactly a request body of that connection
            check = check_body(body, now=time.time())
            assert check.violations == []
            assert check.connection_id == connection_id
            ids.update(check.event_ids)
        assert ids == expected[connection_id]


def test_a_config_error_in_one_connection_is_refused_at_start(brands, tmp_path):
    broken = {
        **CONNECTIONS,
        "brand_b": {"capi_connection_id": "brand-b-id", "auth_token": "tok-b-33"},
    }
    run = run_target(
        tmp_path / "run", brand_config(brands.url, connections=broken), singer_lines([purchase(1)])
    )
    assert run.returncode == 1
    assert "connections['brand_b']" in run.stderr
    assert "UUID" in run.stderr
    assert "brand-b-id" not in run.stderr
    assert brands.requests == []


def test_connections_of_the_wrong_shape_are_refused_without_quoting_them(brands, tmp_path):
    config = brand_config(brands.url, connections=f"brand_a={TOKEN_A}")
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert TOKEN_A not in run.stderr
    assert "connections" in run.stderr
    assert brands.requests == []


def test_an_api_refusing_everything_stops_the_run_naming_the_connection(brands, tmp_path):
    brands.always(400)
    records = [purchase(i, brand="brand_a") for i in range(60)]
    lines = [schema_message("orders", BRAND_SCHEMA)]
    lines += [record_message(record, "orders") for record in records]
    lines.append(state_message({"position": 60}))
    run = run_target(tmp_path / "run", brand_config(brands.url, events_per_request=30), lines)
    assert run.returncode == 1
    # 25 or more: requests in flight on other threads may add to the streak before it stops
    assert re.search(r"connection 'brand_a': the API refused \d+ events in a row", run.stderr)
    assert run.states == []
