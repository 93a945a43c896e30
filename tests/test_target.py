"""The real CLI, as a subprocess, against the strict fake API: delivery, rejects, STATE, faults."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from target_spotify_conversions.sandbox import FakeSpotify
from tests.harness import (
    CONNECTION_ID,
    DEBUG_LOGGING_WAYS,
    REPO,
    SCHEMA,
    TARGET_BIN,
    TOKEN,
    debug_logging,
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

FAST = {"max_retries": 6}


def test_delivers_valid_events_and_rejects_the_rest_with_reasons(fake, tmp_path):
    good = [purchase(i) for i in range(40)]
    bad = [
        purchase(100, **{"$event_time": "2099-01-01T00:00:00Z"}),
        {"$event_id": "no-id-1", "spotify_event_name": "PURCHASE", "amount": 5, "currency": "EUR"},
        purchase(101, currency=None),
        purchase(102, spotify_event_name="Serch"),
        purchase(103, currency="ZZZ"),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), singer_lines(good + bad))

    assert run.returncode == 0, run.stderr
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(40)}
    assert run.count("records read") == 45
    assert run.count("events delivered") == 40
    assert run.count("records rejected") == 5
    for reason in ("event_time_in_future", "no_identifier", "purchase_without_currency",
                   "unknown_event_name", "invalid_currency"):
        assert run.count(f"rejected {reason}") == 1, reason
    rejects = {r["event_id"]: r for r in run.rejects()}
    assert set(rejects) == {"ord-100", "no-id-1", "ord-101", "ord-102", "ord-103"}
    assert rejects["ord-103"]["reasons"][0].startswith("invalid_currency")
    assert rejects["ord-103"]["record"]["email"] == fake_digest("buyer.103@example.com")
    event = fake.accepted["ord-7"]
    assert event["event_name"] == "PURCHASE"
    assert event["user_data"]["hashed_emails"] == [fake_digest("buyer.7@example.com")]
    assert event["user_data"]["hashed_phone_number"] == fake_digest("+14155550007")
    assert event["event_details"] == {"amount": 17.99, "currency": "USD"}


def fake_digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_a_rerun_sends_the_same_event_ids_including_derived_ones(fake, tmp_path):
    records = [purchase(i) for i in range(10)]
    records += [{"event": "Product Viewed", "$device_id": f"d-{i}", "$event_time": 1762000000 + i}
                for i in range(10)]
    lines = singer_lines(records)
    run_target(tmp_path / "first", target_config(fake.url), lines)
    first = fake.accepted_ids()
    first_count = fake.accepted_count
    run_target(tmp_path / "second", target_config(fake.url), lines)

    assert len(first) == 20
    assert fake.accepted_ids() == first
    assert fake.accepted_count == 2 * first_count


def test_state_is_written_only_after_every_earlier_record_is_delivered(fake, tmp_path):
    fake.configure(latency=0.05)
    records = [purchase(i) for i in range(600)]
    config = target_config(fake.url, events_per_request=50, max_concurrent_requests=3)
    process = start_target(tmp_path / "run", config, singer_lines(records, state_every=50))
    states = []
    assert process.stdout is not None
    for line in process.stdout:
        position = json.loads(line)["position"]
        delivered = fake.accepted_ids()
        missing = [i for i in range(position) if f"ord-{i}" not in delivered]
        assert not missing, f"STATE {position} written before events {missing[:5]} arrived"
        states.append(position)
    assert process.wait(timeout=60) == 0
    assert states == sorted(states)
    assert states[-1] == 600
    assert len(states) >= 6, "checkpoints are written while the run goes on, not only at the end"


@pytest.mark.parametrize(
    ("status", "cause"),
    [(401, "auth_token"), (403, "capi_connection_id")],
)
def test_wrong_credentials_stop_the_run_at_once_naming_the_cause(fake, tmp_path, status, cause):
    fake.always(status)
    started = time.monotonic()
    run = run_target(tmp_path / "run", target_config(fake.url, events_per_request=10),
                     singer_lines([purchase(i) for i in range(100)], state_every=5))
    assert run.returncode == 1
    assert time.monotonic() - started < 15
    assert f"HTTP {status}" in run.stderr
    assert cause in run.stderr
    assert run.states == [], "nothing was delivered, so no STATE may be written"
    assert "Traceback" not in run.stderr


def test_a_wrong_token_is_refused_by_the_strict_fake(fake, tmp_path):
    config = target_config(fake.url, auth_token="not-the-token")
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)], state_every=1))
    assert run.returncode == 1
    assert "HTTP 401" in run.stderr
    assert "auth_token" in run.stderr
    assert run.states == []


def test_other_client_errors_stop_the_run_with_status_and_message(tmp_path):
    with FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID) as server:
        wrong_url = server.url.replace("/events/", "/evnts/")
        run = run_target(tmp_path / "run", target_config(wrong_url), singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "HTTP 404" in run.stderr
    assert "api_url" in run.stderr
    assert run.states == []


def test_every_event_arrives_through_5xx_429_and_dropped_connections(fake, tmp_path):
    fake.configure(p_5xx=0.12, p_429=0.08, p_drop=0.05, retry_after=0.2)
    records = [purchase(i) for i in range(3000)]
    config = target_config(fake.url, events_per_request=50, max_retries=10)
    run = run_target(tmp_path / "run", config, singer_lines(records, state_every=100))

    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(3000)}
    faults = [r for r in fake.requests if r.fault]
    assert len(faults) >= 5, "the faults really happened"
    assert run.count("events delivered") == 3000
    assert run.states[-1] == {"position": 3000}


def test_400_is_bisected_until_the_refused_events_are_isolated(fake, tmp_path):
    fake.reject_events({"ord-13", "ord-77"})
    records = [purchase(i) for i in range(100)]
    run = run_target(tmp_path / "run", target_config(fake.url, events_per_request=100),
                     singer_lines(records))
    assert run.returncode == 0
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(100)} - {"ord-13", "ord-77"}
    rejected = {r["event_id"]: r["reasons"] for r in run.rejects()}
    assert set(rejected) == {"ord-13", "ord-77"}
    assert all(reasons[0].startswith("api_rejected: HTTP 400") for reasons in rejected.values())
    assert run.count("rejected api_rejected") == 2
    # The record as read (on the lean path its whole line was kept), redacted: email hashed.
    kept = {r["event_id"]: r["record"] for r in run.rejects()}["ord-13"]
    assert kept["$event_id"] == "ord-13"
    assert kept["amount"] == purchase(13)["amount"]
    assert kept["email"] != purchase(13)["email"]
    assert len(kept["email"]) == 64


def test_413_halves_the_request_and_a_single_oversized_event_is_rejected(fake, tmp_path):
    fake.configure(max_events=60)
    records = [purchase(i) for i in range(200)]
    records.append(purchase(999, content_name="x" * 20_000))
    fake_limit = 15_000
    fake.configure(max_events=60, max_body_bytes=fake_limit)
    run = run_target(tmp_path / "run", target_config(fake.url, events_per_request=200),
                     singer_lines(records))
    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(200)}
    assert [r["event_id"] for r in run.rejects()] == ["ord-999"]
    assert run.rejects()[0]["reasons"][0].startswith("api_too_large")


def test_dry_run_writes_the_exact_bodies_and_sends_nothing(fake, tmp_path):
    records = [purchase(i) for i in range(25)] + [purchase(50, currency="ZZZ")]
    config = target_config(None, dry_run=True, events_per_request=10)
    del config["auth_token"], config["capi_connection_id"]
    run = run_target(tmp_path / "run", config, singer_lines(records, state_every=10))

    assert run.returncode == 0
    bodies = run.dry_run_bodies()
    assert sorted(len(b["conversion_events"]["events"]) for b in bodies) == [5, 10, 10]
    assert fake.requests == []
    assert [r["event_id"] for r in run.rejects()] == ["ord-50"]


def test_a_dry_run_writes_no_state_and_claims_no_delivery(tmp_path):
    """Its STATE, kept by Meltano or `> state.json`, would make the real run skip records."""
    config = target_config(None, dry_run=True, events_per_request=10)
    records = [purchase(i) for i in range(25)]
    run = run_target(tmp_path / "run", config, singer_lines(records, state_every=5))

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout == "", "no STATE"
    assert "events delivered" not in run.stderr
    assert run.count("events written to the dry-run file") == 25
    assert "dry run" in run.summary()["outcome"]
    assert sum(len(b["conversion_events"]["events"]) for b in run.dry_run_bodies()) == 25


def test_dry_run_bodies_are_what_the_api_accepts(fake, tmp_path):
    import requests

    config = target_config(None, dry_run=True, capi_connection_id=fake.connection_id)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(i) for i in range(30)]))
    for body in (tmp_path / "run" / "dry-run.jsonl").read_bytes().splitlines():
        answer = requests.post(fake.url, data=body, timeout=10, headers={
            "Authorization": f"Bearer {run.config['auth_token']}",
            "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
    assert len(fake.accepted_ids()) == 30


def test_slow_answers_time_out_and_are_retried_until_the_api_recovers(fake, tmp_path):
    fake.configure(latency=3.0)

    def recover() -> None:  # however long start-up took: once the first answer (3 s late,
        # so after at least one 1 s timeout) was given, the API recovers
        wait_until(lambda: fake.requests, "the first answer", 120)
        fake.configure(latency=0.0)

    threading.Thread(target=recover, daemon=True).start()
    config = target_config(fake.url, request_timeout=1, events_per_request=20, max_retries=8)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(i) for i in range(60)]))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "no answer within 1 s" in run.stderr
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(60)}


def test_on_invalid_fail_stops_at_the_first_invalid_record(fake, tmp_path):
    records = [purchase(i) for i in range(5)] + [purchase(5, currency="ZZZ")]
    records += [purchase(i) for i in range(6, 10)]
    run = run_target(tmp_path / "run", target_config(fake.url, on_invalid="fail"),
                     singer_lines(records, state_every=1))
    assert run.returncode == 1
    assert "on_invalid is 'fail'" in run.stderr
    assert "ord-5" in run.stderr
    assert all(state["position"] <= 5 for state in run.states)
    assert [r["event_id"] for r in run.rejects()] == ["ord-5"]


def test_unreadable_and_invalid_records_are_rejected_not_a_crash(fake, tmp_path):
    schema = {"type": "object", "properties": {
        "$event_id": {"type": "string"}, "email": {"type": "string"},
        "$event_time": {"type": "string", "format": "date-time"},
        "spotify_event_name": {"type": "string"}, "amount": {"type": "number"},
        "currency": {"type": "string"}}}
    lines = [
        schema_message(schema=schema, key_properties=["$event_id"]),
        record_message(purchase(1, phone=None, **{"$ip": None})),
        '{"type": "RECORD", "stream": "conversions", "record": {"email": "leak@example.com"',
        record_message(purchase(2, amount="a lot", phone=None, **{"$ip": None})),
        record_message(purchase(3, phone=None, **{"$event_time": "yesterday-ish", "$ip": None})),
        record_message({k: v for k, v in purchase(4).items() if k != "$event_id"}),
        state_message({"position": 5}),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.returncode == 0, run.stderr
    assert fake.accepted_ids() == {"ord-1"}
    assert run.count("rejected unreadable_input_line") == 1
    assert run.count("rejected schema_validation") == 1
    assert run.count("rejected invalid_date_time") == 1
    assert run.count("rejected missing_key_properties") == 1
    assert "leak@example.com" not in run.stderr
    assert "Traceback" not in run.stderr
    assert run.states == [{"position": 5}]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([record_message(purchase(1))], "before a corresponding schema"),
        ([schema_message(), json.dumps({"type": "BATCH", "stream": "conversions",
          "encoding": {"format": "jsonl"}, "manifest": ["file:///nonexistent/x.jsonl"]})],
         "BATCH file 'file:///nonexistent/x.jsonl' of stream 'conversions' cannot be read"),
    ],
)
def test_input_the_target_cannot_take_ends_the_run_with_a_clear_error(fake, tmp_path, lines,
                                                                       message):
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"capi_connection_id": "not-a-uuid"}, "capi_connection_id must be a UUID"),
        ({"auth_token": None}, "auth_token is required"),
        ({"event_name_map": {"Search": "SEARCH"}}, "is not a Spotify event name"),
        ({"default_event_name": "Conversion"}, "is not a Spotify event name"),
        ({"events_per_request": 5000}, "events_per_request"),
    ],
)
def test_bad_settings_are_refused_at_start_up(fake, tmp_path, change, message):
    config = target_config(fake.url)
    config.update(change)
    config = {k: v for k, v in config.items() if v is not None}
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert message in run.stderr
    assert fake.requests == []


# The demo sample, less records without a time: those take the time they are mapped at.
SAMPLE = [
    record
    for record in map(json.loads, (REPO / "sample" / "events.jsonl").read_text().splitlines())
    if record.get("$event_time") is not None
]


def test_every_number_of_mapping_processes_writes_the_same_bodies_and_rejects(tmp_path):
    """Workers or none, the output is byte for byte the same: the same request bodies and the
    same rejects with the same reasons, in input order (bodies in any order: requests run
    concurrently)."""
    stream_maps = {"conversions": {"note": "'mapped'", "__key_properties__": ["$event_id"]}}
    lines = singer_lines(SAMPLE + [{"spotify_event_name": "PURCHASE", "$ip": 7}])
    outputs = []
    for processes in (0, 1, 3):
        config = target_config(
            dry_run=True, mapping_processes=processes, events_per_request=7,
            phone_default_country="GB", event_name_map={"Search": "CUSTOM_EVENT_1"},
            stream_maps=stream_maps,
        )
        run = run_target(tmp_path / f"processes-{processes}", config, lines)
        assert run.returncode == 0, run.stderr[-2000:]
        rejects = [
            json.dumps({k: v for k, v in reject.items() if k not in ("run_id", "run_started")})
            for reject in run.rejects()
        ]
        bodies = sorted((run.workdir / "dry-run.jsonl").read_bytes().splitlines())
        outputs.append((bodies, rejects))
    bodies, rejects = outputs[0]
    assert len(bodies) > 10
    codes = {r.split(":")[0] for reject in rejects for r in json.loads(reject)["reasons"]}
    assert {"schema_validation", "missing_key_properties", "unknown_event_name"} <= codes
    assert outputs[1] == outputs[0]
    assert outputs[2] == outputs[0]


LEAN = "records skip the SDK's per-record path"
HOSTILE_LINES = [
    record_message(purchase(900, email="Zoë.Ng@example.com")),  # not ASCII
    record_message(purchase(901, _sdc_extracted_at="2026-01-01T00:00:00Z")),  # SDK metadata
    record_message(purchase(902, amount={"deep": [[[[{"x": 1}]]]]})),
    record_message(purchase(903, **{"$event_time": "not a time"})),
    record_message(purchase(904, **{"$ip": 12345})),  # fails the schema
    record_message({"spotify_event_name": "PURCHASE", "amount": 12345678901234567890123}),
    '{"type": "RECORD", "stream": "conversions", "record": {"amount": NaN}}',
    '{"type": "RECORD", "stream": "conversions", "record": ["not", "an", "object"]}',
    '{"type": "RECORD", "stream": "conversions", "record": ' + '{"a": ' * 120 + "1" + "}" * 121,
    # Records nesting 99 and 100 objects: the message is one level more, and 100 is the limit.
    '{"type": "RECORD", "stream": "conversions", "record": ' + '{"a": ' * 99 + "1" + "}" * 100,
    '{"type": "RECORD", "stream": "conversions", "record": ' + '{"a": ' * 100 + "1" + "}" * 101,
    # Past the decoder's own limit; and a message nested deeply outside its record.
    '{"type": "RECORD", "stream": "conversions", "record": ' + '{"a": ' * 3000 + "1" + "}" * 3001,
    '{"type": "RECORD", "stream": "conversions", "record": {"$event_id": "x"}, "v": '
    + "[" * 150 + "]" * 150 + "}",
    '{"type": "RECORD", "stream": "conversions", "record": {"email": "\\u0000@x.io"}, "v": 1}',
    # Valid JSON no decoder here can hold: unreadable lines, on both paths.
    '{"type": "RECORD", "stream": "conversions", "record": {"amount": 1' + "0" * 5000 + "}}",
    '{"type": "RECORD", "stream": "conversions", "record": {"amount": 1e99999999999999999999}}',
]


def test_the_lean_path_writes_what_the_sdk_path_writes(tmp_path):
    """A stream without stream maps skips the SDK's per-record path; an identity stream map
    keeps it. Both give the same bodies, rejects and counts, for clean and hostile lines."""
    lines = [
        schema_message(key_properties=["$event_id"]),
        *singer_lines(SAMPLE)[1:],
        *HOSTILE_LINES,
    ]
    settings = {"dry_run": True, "phone_default_country": "GB", "events_per_request": 9,
                "event_name_map": {"Search": "CUSTOM_EVENT_1"}}
    outputs = []
    for name, stream_maps in (("lean", None), ("sdk", {"conversions": {}})):
        config = target_config(**settings, **({"stream_maps": stream_maps} if stream_maps else {}))
        run = run_target(tmp_path / name, config, lines)
        assert run.returncode == 0, run.stderr[-2000:]
        assert (LEAN in run.stderr) == (name == "lean")
        rejects = [
            json.dumps({k: v for k, v in reject.items() if k not in ("run_id", "run_started")})
            for reject in run.rejects()
        ]
        counts = {k: v for k, v in run.summary().items() if k.startswith(("records", "rejected"))}
        bodies = sorted((run.workdir / "dry-run.jsonl").read_bytes().splitlines())
        outputs.append((bodies, rejects, counts))
    lean, sdk = outputs
    assert len(lean[0]) > 10
    assert lean[2]["rejected unreadable_input_line"].startswith("8")
    assert lean[0] == sdk[0]
    assert lean[1] == sdk[1]
    assert lean[2] == sdk[2]


@pytest.mark.parametrize("processes", [0, 2])
def test_a_new_schema_applies_from_the_next_record_on_the_lean_path(tmp_path, processes):
    """Records read before a stream's new SCHEMA are checked against the old one, even while
    they are still at a worker; records after it against the new one."""
    def without_email(i: int) -> dict:
        return {k: v for k, v in purchase(i).items() if k != "email"}

    before = [without_email(i) for i in range(25)]
    after = [without_email(100 + i) for i in range(25)]
    lines = [
        schema_message(key_properties=["$event_id"]),
        *(record_message(r) for r in before),
        schema_message(key_properties=["email"]),  # now every record needs an email
        *(record_message(r) for r in after),
    ]
    config = target_config(dry_run=True, events_per_request=10, mapping_processes=processes)
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 0, run.stderr[-2000:]
    assert LEAN in run.stderr
    sent = {e["event_id"] for b in run.dry_run_bodies() for e in b["conversion_events"]["events"]}
    assert sent == {f"ord-{i}" for i in range(25)}
    assert {r["event_id"] for r in run.rejects()} == {f"ord-{100 + i}" for i in range(25)}
    assert run.count("rejected missing_key_properties") == 25


def test_sdk_metadata_is_removed_on_the_lean_path_as_on_the_sdk_path(tmp_path):
    """The SDK's path removes its `_sdc_` metadata from a record before validation; the lean
    path's workers remove the same keys (the SDK's own list). Under a schema that allows no
    other property, a record with those keys passes on both paths, and one with an `_sdc_`
    key the SDK keeps is refused on both."""
    strict = {**SCHEMA, "additionalProperties": False}
    records = [
        purchase(1, _sdc_extracted_at="2026-01-01T00:00:00Z", _sdc_sequence=17),
        purchase(2, _sdc_table_version=3, _sdc_deleted_at=None),
        purchase(3, _sdc_not_the_sdks="x"),
        purchase(4),
    ]
    lines = [schema_message(schema=strict), *map(record_message, records)]
    outputs = []
    for name, stream_maps in (("lean", None), ("sdk", {"conversions": {}})):
        maps = {"stream_maps": stream_maps} if stream_maps else {}
        config = target_config(dry_run=True, **maps)
        run = run_target(tmp_path / name, config, lines)
        assert run.returncode == 0, run.stderr[-2000:]
        assert (LEAN in run.stderr) == (name == "lean")
        sent = sorted(
            event["event_id"]
            for body in (run.workdir / "dry-run.jsonl").read_bytes().splitlines()
            for event in json.loads(body)["conversion_events"]["events"]
        )
        refused = sorted((r["event_id"], r["reasons"][0].split(":")[0]) for r in run.rejects())
        outputs.append((sent, refused))
    assert outputs[0] == (["ord-1", "ord-2", "ord-4"], [("ord-3", "schema_validation")])
    assert outputs[1] == outputs[0]


@pytest.mark.parametrize("setting", ["rejects_file", "summary_file", "dry_run_file"])
def test_an_output_that_is_the_config_file_is_refused_and_the_config_kept(tmp_path, setting):
    """A typo away from `rejects_file: rejects.json`: the run would append to its own config
    (or, for the summary, replace it) and the next run could not start."""
    workdir = tmp_path / "run"
    config = target_config(dry_run=True, **{setting: "config.json"})
    run = run_target(workdir, config, singer_lines([purchase(1), purchase(2, currency="ZZZ")]))
    assert run.returncode == 1
    assert f"{setting} and the --config file name the same file" in run.stderr
    assert json.loads((workdir / "config.json").read_text()) == config


@pytest.mark.parametrize("setting", ["dry_run_file", "rejects_file"])
def test_an_output_that_is_the_input_file_is_refused_and_the_input_kept(tmp_path, setting):
    """`--input events.jsonl` with `dry_run_file: events.jsonl` emptied the input."""
    lines = singer_lines([purchase(1), purchase(2, currency="ZZZ")])
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    config = target_config(dry_run=True, **{setting: "events.jsonl"})
    (tmp_path / "config.json").write_text(json.dumps(config))
    run = subprocess.run(
        [TARGET_BIN, "--config", "config.json", "--input", "events.jsonl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 1, run.stderr[-2000:]
    assert f"{setting} and the --input file name the same file" in run.stderr
    assert (tmp_path / "events.jsonl").read_text() == "\n".join(lines) + "\n"


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy to the fake


def _gateway(upstream: str, key: str) -> http.server.ThreadingHTTPServer:
    """A gateway that takes a key in the query (`?key=...`), as some do in front of an API,
    and forwards the request, without its query, to `upstream`."""

    class Forward(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, answer = 403, b'{"message": "wrong key"}'
            if urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query) == {"key": [key]}:
                headers = {name: self.headers[name] for name in ("Authorization", "Content-Type")}
                forwarded = urllib.request.Request(upstream, body, headers, method="POST")
                try:
                    with _DIRECT.open(forwarded) as response:
                        status, answer = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, answer = exc.code, exc.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("how", DEBUG_LOGGING_WAYS)
def test_debug_logging_shows_requests_but_never_the_query_or_the_token(
    fake, tmp_path, monkeypatch, how
):
    """At DEBUG (the SDK's LOGLEVEL, or the logging config Meltano gives it), urllib3 logs each
    request line with api_url's query: a gateway's key. The lines stay, the query does not."""
    key = "k3y/QUERY+secret"
    gateway = _gateway(fake.url, key)
    quoted = urllib.parse.quote(key, safe="")
    api_url = f"http://127.0.0.1:{gateway.server_port}/capi-direct/events/?key={quoted}"
    debug_logging(how, tmp_path, monkeypatch)
    try:
        run = run_target(tmp_path / "run", target_config(api_url, events_per_request=5),
                         singer_lines([purchase(i) for i in range(12)], state_every=4))
    finally:
        gateway.shutdown()
        gateway.server_close()

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(fake.accepted_ids()) == 12
    for secret in (key, quoted, TOKEN, "k3y"):
        assert secret not in run.stderr
    assert run.stderr.count('"POST /capi-direct/events/?(query not shown) HTTP/1.1" 200') == 3
