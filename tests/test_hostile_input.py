"""Input a tap should never send, and sometimes does: a clear rejection or error, never a leak."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.harness import (
    TARGET_BIN,
    assert_no_leaks,
    purchase,
    record_message,
    run_target,
    schema_message,
    singer_lines,
    target_config,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_megabyte_values_are_rejected_or_hashed_never_sent_or_logged(fake, tmp_path):
    huge = "A" * 2_000_000
    records = [
        purchase(1, **{"$user_agent": huge}),
        purchase(2, spotify_event_name=huge),
        purchase(3, email=huge + "@example.com"),
        purchase(4),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), singer_lines(records))
    assert run.returncode == 0
    assert fake.accepted_ids() == {"ord-3", "ord-4"}
    # longer than an address can be: no email (it would match nobody); sent on its other ids
    assert "hashed_emails" not in fake.accepted["ord-3"]["user_data"]
    assert run.count("warning invalid_email") == 1
    assert run.count("rejected event_too_large") == 1
    assert run.count("rejected unknown_event_name") == 1
    assert len(run.stderr) < 50_000, "no megabyte value was echoed into the log"


def test_internationalised_and_quoted_emails_are_normalised_and_hashed(fake, tmp_path):
    records = [
        purchase(1, email="  Jöhn.Dœ@Exämple.COM "),
        purchase(2, email='"John Doe"@Example.com'),
        purchase(3, email=["A@EXAMPLE.COM", "a@example.com ", "", None, 42]),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), singer_lines(records))
    assert run.returncode == 0, run.stderr
    emails = {i: fake.accepted[f"ord-{i}"]["user_data"]["hashed_emails"] for i in (1, 2, 3)}
    assert emails[1] == [sha("jöhn.dœ@exämple.com")]
    assert emails[2] == [sha('"john doe"@example.com')]
    assert emails[3] == [sha("a@example.com")]


def test_nan_infinity_and_non_utf8_lines_are_unreadable_records(fake, tmp_path):
    workdir = tmp_path / "run"
    lines = [
        schema_message(),
        '{"type": "RECORD", "stream": "conversions", "record": {"amount": NaN}}',
        '{"type": "RECORD", "stream": "conversions", "record": {"amount": Infinity}}',
        record_message(purchase(1, amount="NaN")),
        record_message(purchase(2)),
    ]
    run = run_target(workdir, target_config(fake.url), lines)
    assert run.returncode == 0
    assert run.count("rejected unreadable_input_line") == 2
    assert run.count("rejected invalid_amount") == 1
    assert fake.accepted_ids() == {"ord-2"}

    import subprocess

    raw = (schema_message() + "\n").encode() + b'{"type": "RECORD", "stream": "conversions", ' \
        b'"record": {"email": "caf\xe9@example.com"}}\n' + (record_message(purchase(3)) +
                                                           "\n").encode()
    (tmp_path / "bin").mkdir()
    config = tmp_path / "bin" / "config.json"
    config.write_text(json.dumps(target_config(fake.url)))
    done = subprocess.run([TARGET_BIN, "--config", str(config)], input=raw, capture_output=True,
                          cwd=tmp_path / "bin", timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"unreadable_input_line" in done.stderr
    assert b"not valid UTF-8" in done.stderr
    # The value in any form a log could take (a bare "caf" may be hex in a run id).
    for leaked in (b"caf\xe9@", b"caf\xc3\xa9@", b"caf\\xe9@", b"caf\xef\xbf\xbd@", b"caf?@"):
        assert leaked not in done.stderr
    assert "ord-3" in fake.accepted_ids()


def test_wrong_types_are_dropped_or_rejected_by_rule(fake, tmp_path):
    records = [
        purchase(1, email=12345, phone={"number": "+14155550100"}),       # dropped, ip remains
        purchase(2, **{"$event_time": {"at": "now"}}),                     # rejected
        purchase(3, amount=[1, 2]),                                        # rejected
        purchase(4, **{"$event_id": {"id": 4}}),                           # fails the schema
        purchase(5, opt_out_targeting="maybe"),                            # rejected
        purchase(6, gender=5, age_group=30),                               # gender dropped
        purchase(7, **{"$ip": 12345}),                                     # fails the schema
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), singer_lines(records))
    assert run.returncode == 0
    assert fake.accepted_ids() == {"ord-1", "ord-6"}
    assert "hashed_emails" not in fake.accepted["ord-1"]["user_data"]
    assert fake.accepted["ord-6"]["user_data"]["age_group"] == "30"
    assert "gender" not in fake.accepted["ord-6"]["user_data"]
    assert run.count("rejected schema_validation") == 2
    for reason in ("invalid_event_time", "invalid_amount", "invalid_opt_out_targeting"):
        assert run.count(f"rejected {reason}") == 1, reason
    assert run.count("warning invalid_email") == 1
    assert run.count("warning invalid_phone") == 1
    assert run.count("warning invalid_gender") == 1


def test_a_schema_change_mid_stream_keeps_delivering(fake, tmp_path):
    lines = singer_lines([purchase(i) for i in range(5)], state_every=5)
    changed = {"type": "object", "properties": {"$event_id": {"type": "string"},
                                                "$device_id": {"type": "string"},
                                                "event": {"type": "string"}}}
    lines += [schema_message(schema=changed),
              record_message({"$event_id": "v-1", "$device_id": "d", "event": "Page Viewed"}),
              json.dumps({"type": "STATE", "value": {"position": 6}})]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.returncode == 0
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(5)} | {"v-1"}
    assert run.states[-1] == {"position": 6}
    assert_no_leaks(run, lines)


# The columns of a CSV export, in order: a row shifted by one puts each value in the next one.
CSV_COLUMNS = ("$event_id", "spotify_event_name", "event", "$event_time", "email", "phone", "$ip",
               "$device_id", "amount", "currency", "$action_source", "opt_out_targeting",
               "event_source_url", "content_name", "content_category", "gender", "$spclid")
ANY_SCHEMA = {"type": "object", "properties": {}}


def _rows_with_personal_data_in_every_column():
    """For each column, an email and a phone number in it, in a row that is otherwise sent
    and in one rejected anyway (an unknown event name), so each lands in the rejects file."""
    rows, secrets = [], set()
    for column in CSV_COLUMNS:
        for kind in ("email", "phone"):
            for name in ("Order Completed", "No Such Event"):
                n = len(rows) + 1
                secret = f" Person.{n}@Example.com" if kind == "email" else f"+1 415 555 {n:04d}"
                rows.append({"$event_id": f"row-{n}", "spotify_event_name": name,
                             "$event_time": "2026-11-01T10:00:00Z", "$ip": "203.0.113.7",
                             "amount": "12.50", "currency": "EUR", column: secret})
                secrets |= {secret.strip(), secret.strip().lower(), f"1415555{n:04d}"}
    return rows, secrets


@pytest.mark.parametrize(("path", "settings"), [
    ("lean", {"mapping_processes": 2}),
    ("sdk", {"mapping_processes": 0,
             "stream_maps": {"conversions": {"exported_from": "'warehouse.csv'"}}}),
    ("dry-run", {"dry_run": True}),
])
def test_personal_data_in_the_wrong_column_reaches_no_log_reason_summary_or_rejects(
        fake, tmp_path, path, settings):
    rows, secrets = _rows_with_personal_data_in_every_column()
    lines = [schema_message(schema=ANY_SCHEMA), *(record_message(row) for row in rows)]
    config = target_config(fake.url, summary_file="summary.json", **settings)
    run = run_target(tmp_path / path, config, lines)

    assert run.returncode == 0, run.stderr[-2000:]
    if path == "lean":
        assert "skip the SDK's per-record path" in run.stderr
    written = {"log": run.stderr + run.stdout, "rejects": (tmp_path / path / "rejects.jsonl")
               .read_text(), "summary": (tmp_path / path / "summary.json").read_text(),
               "requests": json.dumps(fake.accepted) + "".join(
                   path.read_text() for path in (tmp_path / path).glob("dry-run.jsonl"))}
    for where, text in written.items():
        leaked = sorted(secret for secret in secrets if secret in text)
        assert not leaked, f"raw emails or phone numbers in the {where}: {leaked[:3]}"
    rejects = {line["event_id"]: line for line in run.rejects()}
    # Every row of the unknown event name is kept, each value that looks personal hashed.
    assert rejects["row-7"]["record"]["spotify_event_name"] == sha("+14155550007")
    assert rejects["row-33"]["record"]["amount"] == sha("person.33@example.com")
    assert rejects["row-33"]["reasons"] == [
        "invalid_amount: a string of 22 characters is not a number"]
    assert rejects["row-39"]["reasons"] == [
        "invalid_currency: a string of 15 characters is not an ISO 4217 currency code"]
    for n, column in enumerate(CSV_COLUMNS):
        if column != "$event_id":
            assert rejects[f"row-{4 * n + 2}"]["record"][column] in (
                sha(f"person.{4 * n + 2}@example.com"), [sha(f"person.{4 * n + 2}@example.com")])
            assert rejects[f"row-{4 * n + 4}"]["record"][column] in (
                sha(f"+1415555{4 * n + 4:04d}"), [sha(f"+1415555{4 * n + 4:04d}")])
    # An email or a phone number in $event_id is no id: rejected (under a derived id), hashed.
    for secret in ("person.1@example.com", "+14155550003"):
        [line] = [line for line in rejects.values()
                  if line["record"].get("$event_id") == sha(secret)]
        assert line["reasons"] == [
            "invalid_event_id: $event_id is an email or a phone number, not an id"]


def _hostile_record_lines() -> list[bytes]:
    """RECORD lines in the SDK's compact form, good and hostile, as a tap might send them."""
    good = [json.dumps({"type": "RECORD", "stream": "conversions", "record": purchase(i)},
                       separators=(",", ":")).encode() for i in range(1, 5)]
    start = b'{"type":"RECORD","stream":"conversions","record":'
    return [
        good[0],
        start + b'{"$event_id":"cut-1","email":"cut.short@example.com"',  # cut short
        start + b'{"$event_id":"nan-1","amount":NaN}}',
        start + b'{"$event_id":"big-1","amount":1' + b"0" * 5000 + b"}}",
        good[1],
        start + b'{"$event_id":"deep-1","x":' + b"[" * 150 + b"]" * 150 + b"}}",
        start + b'{"$event_id":"deep-2","x":' + b"[" * 5000 + b"]" * 5000 + b"}}",
        start + b'{"$event_id":"env-1"},"x":' + b"[" * 150 + b"]" * 150 + b"}",
        good[2],
        start + b'{"$event_id":"two-1","email":"a.b@example.com"},"type":"STATE"}',
        good[3],
        # A name repeated with the value it began with, a second record: the last is read.
        start + json.dumps(purchase(5)).encode() + b',"stream":"conversions","type":"RECORD"}',
        start + json.dumps(purchase(6)).encode() + b',"record":' + json.dumps(purchase(7)).encode()
        + b"}",
        # A number no decoder takes, beside the record: the SDK's path refuses the line too.
        start + json.dumps(purchase(8)).encode() + b',"version":1' + b"0" * 5000 + b"}",
    ]


def test_record_lines_the_workers_read_whole_are_rejected_as_the_reader_rejects_them(tmp_path):
    """The compact lines go to the mapping workers whole, recognised by their start; the same
    lines with their keys reordered have their type and stream decoded in the reading process
    first (then go whole too, or take the SDK's path). Both runs reject the same
    lines with the same reasons, and deliver the same events; only a line naming another type
    is refused for another reason (the reader takes the last type, STATE; a worker refuses the
    line as ambiguous)."""
    import subprocess

    hostile = _hostile_record_lines()
    reordered = [line.replace(b'{"type":"RECORD","stream":"conversions",',
                              b'{"stream":"conversions","type":"RECORD",', 1) for line in hostile]
    assert all(a != b and len(a) == len(b) for a, b in zip(hostile, reordered, strict=True))
    outcomes = []
    for name, lines in (("whole", hostile), ("read", reordered)):
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / "config.json").write_text(json.dumps(target_config(dry_run=True)))
        data = (schema_message() + "\n").encode() + b"".join(line + b"\n" for line in lines)
        done = subprocess.run([TARGET_BIN, "--config", "config.json"], input=data,
                              capture_output=True, cwd=workdir, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert b"cut.short@" not in done.stderr
        assert b"a.b@example" not in done.stderr
        rejects = [json.loads(line)
                   for line in (workdir / "rejects.jsonl").read_text().splitlines()]
        written = [json.loads(body) for body in
                   (workdir / "dry-run.jsonl").read_text().splitlines()]
        sent = {event["event_id"] for body in written
                for event in body["conversion_events"]["events"]}
        outcomes.append(({r["event_id"]: r["reasons"] for r in rejects}, sent))
    (whole, whole_sent), (read, read_sent) = outcomes
    assert whole_sent == read_sent == {"ord-1", "ord-2", "ord-3", "ord-4", "ord-5", "ord-7"}
    deep = ["unreadable_input_line: input line {}: nested more than 100 levels deep"]
    expected = {
        "line-3": [f"unreadable_input_line: input line 3 is not valid UTF-8 JSON "
                   f"({len(hostile[1])} bytes)"],
        "line-4": [f"unreadable_input_line: input line 4 is not valid UTF-8 JSON "
                   f"({len(hostile[2])} bytes)"],
        "line-5": [f"unreadable_input_line: input line 5 is not valid UTF-8 JSON "
                   f"({len(hostile[3])} bytes)"],
        "line-7": [deep[0].format(7)],
        "line-8": [deep[0].format(8)],
        "line-9": [deep[0].format(9)],
        "line-15": [f"unreadable_input_line: input line 15 is not valid UTF-8 JSON "
                    f"({len(hostile[13])} bytes)"],
    }
    assert {k: v for k, v in whole.items() if k != "line-11"} == expected
    assert {k: v for k, v in read.items() if k != "line-11"} == expected
    assert read["line-11"] == ["unreadable_input_line: input line 11: a STATE message without "
                               "a value"]
    assert whole["line-11"] == ["unreadable_input_line: input line 11 starts as a RECORD "
                                "message, then names another type or stream, or a record that "
                                "is no object (a name given twice)"]
