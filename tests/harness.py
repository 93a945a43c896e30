"""Running the real target CLI as a subprocess, and reading what it left behind.

Shared by the test modules and the benchmark; every run is checked for leaked personal data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
TARGET_BIN = str(Path(sys.executable).with_name("target-spotify-conversions"))
TOKEN = "test-token-7c1d2a90f5e04b6b"
CONNECTION_ID = "3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "$event_id": {"type": ["string", "integer", "null"]},
        "spotify_event_name": {"type": ["string", "null"]},
        "event": {"type": ["string", "null"]},
        "$event_time": {},
        "email": {},
        "phone": {},
        "$ip": {"type": ["string", "null"]},
        "$device_id": {"type": ["string", "null"]},
        "amount": {},
        "currency": {"type": ["string", "null"]},
    },
}


# The logging config `meltano --log-level=debug` hands the SDK (SINGER_SDK_LOG_CONFIG).
MELTANO_DEBUG_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"singer_formatter": {"format": "%(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "singer_formatter",
                             "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["console"], "level": "DEBUG"},
}
DEBUG_LOGGING_WAYS = ("LOGLEVEL", "meltano")


def debug_logging(how: str, folder: Path, monkeypatch: Any) -> None:
    """Turn DEBUG logging on for the runs a test starts, the way `how` names: the SDK's
    LOGLEVEL, or the logging config `meltano --log-level=debug` hands it (written to
    `folder`; JSON is YAML, which the SDK reads)."""
    if how == "LOGLEVEL":
        monkeypatch.setenv("LOGLEVEL", "DEBUG")
        return
    logging_config = folder / "logging.json"
    logging_config.write_text(json.dumps(MELTANO_DEBUG_LOGGING))
    monkeypatch.setenv("SINGER_SDK_LOG_CONFIG", str(logging_config))


def schema_message(stream: str = "conversions", schema: Mapping[str, Any] | None = None,
                   key_properties: Sequence[str] = ()) -> str:
    return json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema or SCHEMA,
                       "key_properties": list(key_properties)})


def record_message(record: Mapping[str, Any], stream: str = "conversions") -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": record})


def state_message(value: Any) -> str:
    return json.dumps({"type": "STATE", "value": value})


def singer_lines(records: Iterable[Mapping[str, Any]], *, stream: str = "conversions",
                 state_every: int | None = None) -> list[str]:
    """SCHEMA, the RECORDs, and a STATE {"position": n} after every `state_every` records."""
    lines = [schema_message(stream)]
    n = 0
    for n, record in enumerate(records, 1):
        lines.append(record_message(record, stream))
        if state_every and n % state_every == 0:
            lines.append(state_message({"position": n}))
    if state_every:
        lines.append(state_message({"position": n}))
    return lines


def purchase(i: int, **extra: Any) -> dict[str, Any]:
    """A valid Freshpaint-style purchase with messy personal data."""
    record = {
        "$event_id": f"ord-{i}",
        "spotify_event_name": "Order Completed",
        "$event_time": "2026-11-01T10:00:00Z",
        "email": f"  Buyer.{i}@Example.COM ",
        "phone": f"+1 (415) 555-{i % 10000:04d}",
        "$ip": "203.0.113.7",
        "amount": 10 + i % 90 + 0.99,
        "currency": "usd",
    }
    record.update(extra)
    return record


@dataclass
class Run:
    """What one run of the CLI produced."""

    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def states(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def summary(self) -> dict[str, str]:
        """The closing summary as {'records read': '10', 'rejected no_identifier': '2', ...}."""
        found = {}
        for line in self.stderr.splitlines():
            _, marker, fact = line.partition("summary: ")
            if marker:
                key, _, value = fact.strip().partition(": ")
                found[key] = value
        return found

    def count(self, key: str) -> int:
        return int(self.summary().get(key, "0").split()[0])

    def rejects(self) -> list[dict[str, Any]]:
        return _jsonl(self.workdir / "rejects.jsonl")

    def dry_run_bodies(self) -> list[dict[str, Any]]:
        return _jsonl(self.workdir / "dry-run.jsonl")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def target_config(api_url: str | None = None, **settings: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "capi_connection_id": CONNECTION_ID,
        "auth_token": TOKEN,
        "rejects_file": "rejects.jsonl",
        "dry_run_file": "dry-run.jsonl",
    }
    if api_url:
        config["api_url"] = api_url
    config.update(settings)
    return config


def start_target(workdir: Path, config: Mapping[str, Any], lines: Sequence[str] | None = None,
                 **popen: Any) -> subprocess.Popen[str]:
    """Start the CLI in `workdir`; input comes from `lines` (written to a file) or a pipe."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config))
    stdin: Any = subprocess.PIPE
    if lines is not None:
        input_path = workdir.parent / f"{workdir.name}-input.jsonl"
        input_path.write_text("\n".join(lines) + "\n")
        stdin = input_path.open()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [TARGET_BIN, "--config", "config.json"], cwd=workdir, stdin=stdin,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen,
    )


def run_target(workdir: Path, config: Mapping[str, Any], lines: Sequence[str],
               *, timeout: float = 180) -> Run:
    """Run the CLI to its end and check that nothing it wrote leaks personal data."""
    process = start_target(workdir, config, lines)
    stdout, stderr = process.communicate(timeout=timeout)
    run = Run(process.returncode, stdout, stderr, workdir, dict(config))
    assert_no_leaks(run, lines)
    return run


def raw_secrets(lines: Iterable[str], config: Mapping[str, Any]) -> set[str]:
    """Every raw email, phone and token in an input, in the forms a leak could take."""
    found: set[str] = set()
    token = config.get("auth_token")
    if token:
        found.add(str(token))
    connections = config.get("connections")
    for entry in connections.values() if isinstance(connections, dict) else ():
        if isinstance(entry, dict) and entry.get("auth_token"):
            found.add(str(entry["auth_token"]))
    for line in lines:
        try:
            record = json.loads(line).get("record") or {}
        except (ValueError, AttributeError, RecursionError):  # hostile lines are no records
            continue
        if not isinstance(record, dict):
            continue
        for key in ("email", "phone"):
            values = record.get(key)
            for value in values if isinstance(values, list) else [values]:
                if not isinstance(value, str) or len(value.strip()) < 6:
                    continue
                text = value.strip()
                if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
                    continue  # a pre-hashed value is no secret
                found.update({text, text.lower()})
                digits = "".join(c for c in text if c.isdigit())
                if key == "phone" and len(digits) >= 9:
                    found.add(digits)
    return found


def assert_no_leaks(run: Run, lines: Sequence[str]) -> None:
    """No raw email, phone or token in stdout, stderr or any file the run wrote."""
    secrets = raw_secrets(lines, run.config)
    outputs = {"stdout": run.stdout, "stderr": run.stderr}
    for path in run.workdir.rglob("*"):
        if path.is_file() and path.name != "config.json":
            outputs[str(path)] = path.read_text(errors="replace")
    for where, text in outputs.items():
        assert _first_found(secrets, text) is None, f"a raw email/phone/token leaked into {where}"


def _first_found(secrets: set[str], text: str) -> str | None:
    """A secret that occurs in `text`, or None. With many secrets (a record of 100,000 emails),
    every slice of the text of each secret length is looked up in a set, instead of a search
    of the whole text per secret: the same answer, in time linear in the text (the binary
    ledger file made the search per secret take tens of seconds)."""
    if len(secrets) <= 1000:
        return next((secret for secret in secrets if secret in text), None)
    by_length: dict[int, set[str]] = {}
    for secret in secrets:
        by_length.setdefault(len(secret), set()).add(secret)
    for length, group in by_length.items():
        for start in range(len(text) - length + 1):
            if text[start:start + length] in group:
                return text[start:start + length]
    return None


T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    """Poll `condition` until it returns something true, and return that; fail the test,
    naming `what` was awaited, if `timeout` seconds pass first. For waiting on an event a
    test can observe (a request the fake answered, a line in a log), never on a guess of
    how long something takes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}, in vain")
        time.sleep(0.005)
