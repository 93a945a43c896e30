"""`spotify-capi-sandbox`, the command users rehearse with, is the fake the tests trust.

The installed console script is started as a user starts it, a pipeline runs through it (the
real target CLI, api_url pointed at it), and GET /_stats says what it accepted and refused.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness import CONNECTION_ID, TOKEN, purchase, run_target, singer_lines, target_config

SANDBOX = Path(sys.executable).with_name("spotify-capi-sandbox")
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def sandbox() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [str(SANDBOX), "--port", "0", "--token", TOKEN, "--connection-id", CONNECTION_ID],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().split()
        assert first[0] == "URL", first
        yield process, first[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_pipeline_runs_through_the_sandbox_command_and_stats_say_what_it_took(
    sandbox, tmp_path
):
    process, url = sandbox
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/capi-direct/events/")
    stats_url = url.replace("/capi-direct/events/", "/_stats")

    records = [purchase(i) for i in range(7)]
    run = run_target(tmp_path / "run", target_config(url, events_per_request=3),
                     singer_lines(records))
    assert run.returncode == 0, run.stderr
    assert run.count("events delivered") == 7
    stats = requests.get(stats_url, timeout=5).json()
    assert stats["accepted_events"] == 7
    assert stats["requests"] == 3
    assert stats["refused_events"] == {}
    assert stats["contract_violations"] == 0

    # A bad event, as a user's own client might send it: refused, naming the field.
    body = {"conversion_events": {"capi_connection_id": CONNECTION_ID, "events": [{
        "event_name": "PURCHASE", "event_id": "ord-99",
        "event_time": "2026-01-02T03:04:05Z",
        "user_data": {"ip_address": "203.0.113.9", "gender": "unknown"},
        "event_details": {"amount": 5, "currency": "EUR"},
    }]}}
    answer = requests.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                           timeout=5)
    assert answer.status_code == 400
    assert answer.json()["messages"] == ["events[0].user_data.gender: not MALE or FEMALE"]
    stats = requests.get(stats_url, timeout=5).json()
    assert stats["refused_events"] == {"user_data.gender: not MALE or FEMALE": 1}
    assert stats["accepted_events"] == 7

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["accepted_events"] == 7
    assert final["statuses"] == {"200": 3, "400": 1}
    # The README's rehearsal shows these counts: the same names.
    shown = json.loads(README.read_text(encoding="utf-8").split("```json\n", 1)[1].split("```")[0])
    assert set(shown) == set(final)


IDLE_ID = "77777777-8888-4999-aaaa-bbbbbbbbbbbb"


@pytest.mark.parametrize("credential", ["no-equals-sign", "=" + IDLE_ID, "tok=not-a-uuid"])
def test_a_credential_the_sandbox_cannot_take_is_a_usage_error(credential) -> None:
    done = subprocess.run([str(SANDBOX), "--port", "0", "--credential", credential],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--credential takes" in done.stderr or "must be a UUID" in done.stderr


def test_an_agency_rehearsal_counts_each_connection(tmp_path) -> None:
    """Extra token and connection pairs are accepted, and /_stats counts per connection."""
    brand_id, brand_token = "66666666-7777-4888-9999-aaaaaaaaaaaa", "brand-b-token-4c1e"
    process = subprocess.Popen(
        [str(SANDBOX), "--port", "0", "--token", TOKEN, "--connection-id", CONNECTION_ID,
         "--credential", f"{brand_token}={brand_id}", "--count-only",
         "--credential", f"idle-token={IDLE_ID.upper()}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[1]
        records = [purchase(i, brand="brand_b" if i % 3 == 0 else None) for i in range(9)]
        config = target_config(
            url, connection_property="brand",
            connections={"brand_b": {"capi_connection_id": brand_id, "auth_token": brand_token}},
        )
        run = run_target(tmp_path / "run", config, singer_lines(records))
        assert run.returncode == 0, run.stderr
        stats = requests.get(url.replace("/capi-direct/events/", "/_stats"), timeout=5).json()
        assert stats["accepted_by_connection"] == {CONNECTION_ID: 6, brand_id: 3, IDLE_ID: 0}
        assert stats["accepted_events"] == 9
    finally:
        process.kill()
        process.wait()
