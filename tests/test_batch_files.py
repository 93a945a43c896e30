"""BATCH messages: records in files take the same path as RECORD messages, STATE waits for them."""

from __future__ import annotations

import gzip
import json
import os
import signal

import pytest

from target_spotify_conversions import batch_files
from target_spotify_conversions.batch_files import BatchFileError, batch_blocks
from tests.harness import (
    SCHEMA,
    Run,
    purchase,
    record_message,
    run_target,
    schema_message,
    start_target,
    state_message,
    target_config,
    wait_until,
)


def write_batch(path, records, *, gzipped=True, extra_lines=()):
    lines = [json.dumps(record) for record in records] + list(extra_lines)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path.as_uri()


def batch_message(urls, stream="conversions", compression="gzip"):
    return json.dumps({
        "type": "BATCH", "stream": stream,
        "encoding": {"format": "jsonl", "compression": compression}, "manifest": urls,
    })


def batch_lines(message):
    """(line number, line) of every non-blank line of a BATCH message's files."""
    return [
        (number, line)
        for block in batch_blocks(message)
        for number, line in enumerate(block.lines, block.first)
        if line.strip()
    ]


def test_a_batch_of_gzip_files_is_delivered_in_full_with_its_state(fake, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    urls = [
        write_batch(files / f"part-{n}.jsonl.gz", [purchase(n * 100 + i) for i in range(100)])
        for n in range(3)
    ]
    lines = [
        schema_message(),
        record_message(purchase(999)),
        state_message({"before": True}),
        batch_message(urls),
        state_message({"after_batch": True}),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url, events_per_request=70), lines)
    assert run.returncode == 0, run.stderr
    expected = {f"ord-{n * 100 + i}" for n in range(3) for i in range(100)} | {"ord-999"}
    assert fake.accepted_ids() == expected
    assert run.states[-1] == {"after_batch": True}
    assert run.count("records read") == 301
    event = fake.accepted["ord-205"]
    assert event["event_details"] == {"amount": purchase(205)["amount"], "currency": "USD"}


def test_batch_records_are_validated_and_rejected_like_records(fake, tmp_path):
    schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "currency": {"type": "string"}}}
    url = write_batch(
        tmp_path / "part.jsonl",
        [purchase(1), purchase(2, currency=7), purchase(3, currency="ZZZ")],
        gzipped=False,
        extra_lines=["{not json", "[1, 2]"],
    )
    lines = [
        schema_message(schema=schema),
        batch_message([url], compression="none"),
        state_message({"done": 1}),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.returncode == 0, run.stderr
    assert fake.accepted_ids() == {"ord-1"}
    assert run.count("rejected schema_validation") == 1
    assert run.count("rejected invalid_currency") == 1
    assert run.count("rejected unreadable_input_line") == 2
    assert run.states[-1] == {"done": 1}
    assert {r["event_id"] for r in run.rejects()} >= {"ord-2", "ord-3"}


def test_stream_maps_apply_to_batch_records(fake, tmp_path):
    rows = [{"order_id": 7, "total": 12, "cur": "EUR", "mail": "a@example.com",
             "at": "2026-11-01T10:00:00Z"}]
    url = write_batch(tmp_path / "orders.jsonl.gz", rows)
    types = {"order_id": "integer", "total": "number", "cur": "string", "mail": "string",
             "at": "string"}
    schema = {"type": "object", "properties": {k: {"type": v} for k, v in types.items()}}
    maps = {"public-orders": {"$event_id": "str(order_id)", "amount": "total",
                              "currency": "cur", "email": "mail", "$event_time": "at",
                              "spotify_event_name": "'PURCHASE'"}}
    lines = [schema_message("public-orders", schema), batch_message([url], "public-orders")]
    run = run_target(tmp_path / "run", target_config(fake.url, stream_maps=maps), lines)
    assert run.returncode == 0, run.stderr
    assert fake.accepted["7"]["event_details"] == {"amount": 12, "currency": "EUR"}


def test_a_missing_batch_file_stops_the_run_before_its_state(fake, tmp_path):
    url = write_batch(tmp_path / "ok.jsonl.gz", [purchase(1)])
    missing = (tmp_path / "gone.jsonl.gz").as_uri()
    lines = [schema_message(), state_message({"start": 0}), batch_message([url, missing]),
             state_message({"after": 1})]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.returncode == 1
    assert "gone.jsonl.gz" in run.stderr
    assert "cannot be read" in run.stderr
    assert "Internal error" not in run.stderr
    assert {"after": 1} not in run.states


def test_a_corrupt_gzip_file_stops_the_run_with_one_clear_line(fake, tmp_path):
    path = tmp_path / "bad.jsonl.gz"
    data = gzip.compress("".join(json.dumps(purchase(i)) + "\n" for i in range(200)).encode())
    path.write_bytes(data[: len(data) // 2])  # cut short, as by a full disk
    lines = [schema_message(), batch_message([path.as_uri()]), state_message({"after": 1})]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)
    assert run.returncode == 1
    assert "bad.jsonl.gz" in run.stderr
    assert "Internal error" not in run.stderr
    assert run.states == []


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"stream": "s", "encoding": {"format": "parquet"}, "manifest": []}, "not supported"),
        ({"stream": "s", "encoding": {"format": "jsonl", "compression": "zstd"},
          "manifest": []}, "not supported"),
        ({"stream": "s", "manifest": []}, "no encoding"),
        ({"stream": "s", "encoding": {"format": "jsonl"}, "manifest": "file:///x"}, "manifest"),
    ],
)
def test_batch_messages_the_target_cannot_read_are_named(message, words):
    with pytest.raises(BatchFileError, match=words):
        batch_lines(message)


def test_a_stop_during_a_batch_ends_it_and_never_writes_the_state_after_it(fake, tmp_path):
    # Many records in one file (several blocks of lines), a slow API: SIGTERM arrives while
    # the batch is read. What was read is delivered; the STATE after the batch is not written.
    fake.configure(latency=0.05)
    url = write_batch(tmp_path / "big.jsonl.gz", [purchase(i) for i in range(20_000)])
    lines = [
        schema_message(),
        state_message({"before": True}),
        batch_message([url]),
        state_message({"after_batch": True}),
    ]
    config = target_config(fake.url, events_per_request=100, max_concurrent_requests=1)
    process = start_target(tmp_path / "run", config, lines)
    wait_until(lambda: fake.unique_count >= 200, "the batch to be delivered in part", 60)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    run = Run(process.returncode, stdout, stderr, tmp_path / "run", config)
    assert run.returncode == 128 + signal.SIGTERM, run.stderr[-2000:]
    assert {"after_batch": True} not in run.states
    read = run.count("records read")
    assert 200 <= read < 20_000
    assert run.count("events delivered") == read == fake.unique_count


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: data[:30] + bytes(b ^ 0xFF for b in data[30:60]) + data[60:],  # corrupt
        lambda data: b"not gzip at all" * 10,
        lambda data: data[:-8] + b"\0\0\0\0" + data[-4:],  # wrong checksum
    ],
    ids=["truncated", "corrupt-deflate", "not-gzip", "bad-crc"],
)
def test_a_damaged_gzip_file_is_named_and_stops_the_batch(tmp_path, spoil):
    records = [purchase(i, pad="x" * (i % 97)) for i in range(2000)]
    path = tmp_path / "part.jsonl.gz"
    write_batch(path, records)
    path.write_bytes(spoil(path.read_bytes()))
    message = json.loads(batch_message([path.as_uri()]))
    with pytest.raises(BatchFileError, match=r"BATCH file 'file://.*part\.jsonl\.gz' of stream"):
        batch_lines(message)


def test_plain_paths_and_blank_lines(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"b": 2}\n')
    message = {"stream": "s", "encoding": {"format": "jsonl", "compression": "none"},
               "manifest": [str(path)]}
    assert [(n, line.strip()) for n, line in batch_lines(message)] == [
        (1, b'{"a": 1}'), (4, b'{"b": 2}'),
    ]


@pytest.mark.parametrize("gzipped", [True, False])
def test_files_are_read_in_blocks_without_splitting_a_line_or_losing_its_number(
    tmp_path, monkeypatch, gzipped
):
    monkeypatch.setattr(batch_files, "READ_BYTES", 1000)  # many blocks, lines across their ends
    lines = [json.dumps({"n": n, "pad": "x" * (n * 37 % 900)}).encode() for n in range(400)]
    lines[10] = lines[11] = b""  # blank lines keep their numbers
    data = b"\n".join(lines)  # and the last line has no line break
    path = tmp_path / ("part.jsonl.gz" if gzipped else "part.jsonl")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    message = json.loads(batch_message([path.as_uri()], compression="gzip" if gzipped else "none"))
    blocks = list(batch_blocks(message))
    assert len(blocks) > 100
    assert all(block.text.split(b"\n")[: len(block.lines)] == block.lines for block in blocks)
    expected = [(n, line) for n, line in enumerate(lines, 1) if line]
    assert batch_lines(message) == expected


def test_batch_lines_give_what_record_lines_give_on_either_path(tmp_path):
    """BATCH lines take the lean path when their stream does; the output is the same as the
    same records sent as RECORD lines, and as either sent through an identity stream map."""
    records = [purchase(i) for i in range(30)] + [
        purchase(30, email="Zoë@example.com"),  # not ASCII: the SDK path
        purchase(32, _sdc_extracted_at="2024-05-01T00:00:00Z"),  # SDK metadata: the SDK path
        purchase(31, **{"$ip": 5}),  # fails the schema
        {"spotify_event_name": "PURCHASE", "amount": 1},  # no identifier, no currency
    ]
    bad_lines = ["[1, 2]", '{"amount": 1' + "0" * 5000 + "}"]
    url = write_batch(tmp_path / "part.jsonl.gz", records, extra_lines=bad_lines)
    as_batch = [schema_message(), batch_message([url])]
    as_records = [schema_message(), *(record_message(r) for r in records)]
    outputs = {}
    for name, lines in (("batch", as_batch), ("records", as_records)):
        for path, maps in (("lean", {}), ("sdk", {"stream_maps": {"conversions": {}}})):
            config = target_config(dry_run=True, events_per_request=8, **maps)
            run = run_target(tmp_path / f"{name}-{path}", config, lines)
            assert run.returncode == 0, run.stderr[-2000:]
            bodies = sorted((run.workdir / "dry-run.jsonl").read_bytes().splitlines())
            rejects = sorted(
                json.dumps({k: v for k, v in r.items() if k not in ("run_id", "run_started")})
                for r in run.rejects() if r["stream"] != "(input)"
            )
            outputs[name, path] = (bodies, rejects, run.count("rejected unreadable_input_line"))
    assert len(outputs["batch", "lean"][0]) == 4  # 31 events in requests of 8
    assert outputs["batch", "lean"][2] == 2
    assert outputs["batch", "lean"] == outputs["batch", "sdk"]
    assert outputs["batch", "lean"][:2] == outputs["records", "lean"][:2]
    assert outputs["records", "lean"] == outputs["records", "sdk"]


@pytest.mark.parametrize(("url", "shown"), [
    ("http://batchuser:pw-s3cr3t@127.0.0.1:9/batch.jsonl", "http://127.0.0.1:9/batch.jsonl"),
    ("s3://AKIAEXAMPLEKEY:wJalrS3cr3tKey@my-bucket/batch/1.jsonl.gz",
     "s3://my-bucket/batch/1.jsonl.gz"),
    ("https://my-bucket.s3.amazonaws.com/1.jsonl.gz?X-Amz-Credential=AKIAEXAMPLEKEY"
     "&X-Amz-Signature=deadbeefs3cr3t", "https://my-bucket.s3.amazonaws.com/1.jsonl.gz?"),
])
def test_credentials_in_a_batch_url_are_never_logged(fake, tmp_path, url, shown):
    lines = [schema_message(), batch_message([url]), state_message({"after": 1})]
    run = run_target(tmp_path / "run", target_config(fake.url), lines)

    assert run.returncode == 1
    assert "cannot be read" in run.stderr
    assert shown in run.stderr
    for secret in ("batchuser", "s3cr3t", "S3cr3t", "AKIAEXAMPLEKEY"):
        assert secret not in run.stderr + run.stdout
    assert "Internal error" not in run.stderr


def test_the_reason_for_an_unreadable_batch_line_names_its_file_without_credentials():
    from target_spotify_conversions.unreadable import not_json

    assert not_json(3, "s3://AKIAEXAMPLEKEY:S3cr3t@my-bucket/1.jsonl?token=abc") == (
        "line 3 of BATCH file 's3://my-bucket/1.jsonl?(query removed)' is not a JSON object")


def test_a_batch_file_that_is_a_fifo_stops_the_run_instead_of_waiting_for_a_writer(
    fake, tmp_path
):
    fifo = tmp_path / "part-0.jsonl.gz"
    os.mkfifo(fifo)  # opening it would wait for a writer for ever, deaf to a stop signal
    lines = [schema_message(), batch_message([fifo.as_uri()]), state_message({"after": 1})]
    run = run_target(tmp_path / "run", target_config(fake.url), lines, timeout=60)
    assert run.returncode == 1
    assert "is not a regular file (a FIFO, a device or a directory)" in run.stderr
    assert run.states == []
    assert "Internal error" not in run.stderr
