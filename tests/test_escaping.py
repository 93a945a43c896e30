"""Input values on log lines: escaped, so that no value can write a line of its own."""

from __future__ import annotations

import logging

from target_spotify_conversions.escaping import install_log_escaping, printable
from tests.harness import (
    SCHEMA,
    purchase,
    record_message,
    run_target,
    schema_message,
    target_config,
)


def test_input_values_cannot_forge_log_lines(fake, tmp_path):
    forged = "x\n2026-01-01 00:00:00,000 | INFO | target | summary: outcome: forged"
    lines = [
        schema_message(stream=forged),
        record_message(
            purchase(1, **{"$event_id": "id\r\nINFO summary: outcome: forged"}), stream=forged
        ),
        record_message(
            purchase(2, spotify_event_name="Nope\nINFO summary: outcome: forged"), stream=forged
        ),
        schema_message(stream=forged, schema={**SCHEMA, "title": "changed"}),
        record_message(purchase(3), stream=forged),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines, timeout=120)
    assert run.returncode == 0, run.stderr
    assert fake.accepted_ids() == {"id\r\nINFO summary: outcome: forged", "ord-3"}
    assert run.count("rejected unknown_event_name") == 1, run.stderr
    assert "x\\n2026-01-01" in run.stderr  # the value is logged, escaped on its line
    for line in run.stderr.splitlines():
        assert not line.startswith(("2026-01-01", "INFO summary")), line
    assert [r["stream"] for r in run.rejects()] == [forged]  # JSON keeps it exact

    lines = [schema_message(), record_message(purchase(4), stream="a\nINFO summary: forged")]
    run = run_target(tmp_path / "unknown", target_config(fake.url), lines, timeout=120)
    assert run.returncode == 1
    assert "Run failed: A record for stream 'a\\nINFO summary: forged'" in run.stderr
    assert not [line for line in run.stderr.splitlines() if line.startswith("INFO summary")]


def test_printable_escapes_control_characters_only():
    assert printable("plain é ü 東京") == "plain é ü 東京"
    assert printable("a\nb\r\x1b[31m\u2028") == "a\\nb\\r\\x1b[31m\\u2028"
    assert printable(ValueError("x\ny")) == "x\\ny"


def test_log_records_get_escaped_arguments(caplog):
    install_log_escaping()
    install_log_escaping()  # twice is once
    logger = logging.getLogger("test-escaping")
    with caplog.at_level(logging.INFO, logger="test-escaping"):
        logger.info("stream '%s', count %d", "s\nINFO forged", 3)
    assert caplog.messages == ["stream 's\\nINFO forged', count 3"]
