"""A real warehouse table through the real Meltano CLI: tap-postgres into the target.

A PostgreSQL server is started here (initdb in a temporary directory, listening on 127.0.0.1
and a free port only; as an unprivileged user when the tests run as root, since PostgreSQL
refuses root). It holds an orders table with timestamptz values at several offsets, numeric,
inet, text, nulls and messy values. `meltano run tap-postgres target-spotify-conversions` with
the README's kind of stream map delivers it to a FakeSpotify, and every delivered event is
compared field by field with what the rows say. A second run, after new rows are inserted,
reads incrementally from the stored bookmark and sends only the new rows.

Under CI (CI=true) the test must run: .ci/run installs PostgreSQL when it is missing.
Elsewhere it is skipped only when no PostgreSQL server binary exists.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from target_spotify_conversions.sandbox import FakeSpotify
from tests.test_meltano_e2e import CONNECTION_ID, REPO, TOKEN, Meltano, _meltano_executable

PIPELINE = ["tap-postgres", "target-spotify-conversions"]
STATE_ID = "test:tap-postgres-to-target-spotify-conversions"
STREAM = "public-orders"  # tap-postgres names streams <schema>-<table>
PASSWORD = "pg-test-password-5e1b"
SERVER_TIME_ZONE = "America/New_York"  # the run asks for UTC sessions: the server's is moot

STREAM_MAPS = {
    STREAM: {
        "$event_id": "str(order_id)",
        "$event_time": "ordered_at",
        "spotify_event_name": "'PURCHASE'",
        "email": "customer_email",
        "phone": "customer_phone",
        "amount": "total",
        "currency": "currency_code",
        "$ip": "client_ip",
        "$user_agent": "user_agent",
        "__filter__": "status != 'test'",
        "__else__": "__NULL__",
        "__key_properties__": ["$event_id"],
    }
}

CREATE = """
CREATE TABLE orders (
    order_id integer PRIMARY KEY,
    ordered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    customer_email text,
    customer_phone text,
    total numeric(12, 2),
    currency_code text,
    client_ip inet,
    user_agent text,
    status text
);
"""
COLUMNS = (
    "order_id, ordered_at, updated_at, customer_email, customer_phone, total, currency_code, "
    "client_ip, user_agent, status"
)
FIRST_ROWS = """
(1001, '2026-11-02 09:30:00+01', '2026-11-03 00:00:01+00', ' Ana@Example.org ',
 '020 7946 0958', 42.50, 'gbp', '198.51.100.23', 'Mozilla/5.0 (X11; Linux x86_64)', 'paid'),
(1002, '2026-11-02 10:00:00.123-05', '2026-11-03 00:00:02+00', NULL,
 '+1 (415) 555-0100', 100.00, 'USD', '2001:DB8::1', NULL, 'paid'),
(1003, '2026-11-02 23:15:30.5+05:30', '2026-11-03 00:00:03+00', 'BOB@example.com',
 NULL, 0.99, ' eur ', NULL, 'curl/8.5.0', 'paid'),
(1004, '2026-11-02 12:00:00+00', '2026-11-03 00:00:04+00', NULL,
 NULL, 10.00, 'EUR', NULL, 'curl/8.5.0', 'paid'),
(1005, '2026-11-02 12:00:00+00', '2026-11-03 00:00:05+00', 'tester@example.net',
 NULL, 1.00, 'EUR', '192.0.2.1', NULL, 'test'),
(1006, '2026-11-02 12:00:00+02', '2026-11-03 00:00:06+00', 'carol@example.com',
 NULL, 5.00, 'XYZ', NULL, NULL, 'paid'),
(1007, '2026-11-02 13:00:00-08', '2026-11-03 00:00:07+00', 'dave@example.com',
 NULL, NULL, 'EUR', NULL, NULL, 'paid')
"""
NEW_ROWS = """
(1008, '2026-11-04 08:00:00+09', '2026-11-05 00:00:01+00', 'Erin@Example.com ',
 '07700 900123', 19.90, 'gbp', '203.0.113.99', NULL, 'paid'),
(1009, '2026-11-04 20:45:10.001-03', '2026-11-05 00:00:02+00', NULL,
 NULL, 7.00, 'BRL', '198.51.100.7', 'Mozilla/5.0 (iPhone)', 'paid')
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def purchase(
    event_id: str, event_time: str, user_data: dict[str, Any], amount: float, currency: str
) -> dict[str, Any]:
    return {
        "event_name": "PURCHASE",
        "event_id": event_id,
        "event_time": event_time,
        "user_data": user_data,
        "event_details": {"amount": amount, "currency": currency},
        "opt_out_targeting": True,
    }


# What each row must become, worked out by hand from the rows above (times in UTC).
EXPECTED_FIRST = {
    "1001": purchase(
        "1001",
        "2026-11-02T08:30:00.000Z",
        {
            "hashed_emails": [sha("ana@example.org")],
            "hashed_phone_number": sha("+442079460958"),
            "ip_address": "198.51.100.23",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
        42.5,
        "GBP",
    ),
    "1002": purchase(
        "1002",
        "2026-11-02T15:00:00.123Z",
        {"hashed_phone_number": sha("+14155550100"), "ip_address": "2001:db8::1"},
        100,
        "USD",
    ),
    "1003": purchase(
        "1003",
        "2026-11-02T17:45:30.500Z",
        {"hashed_emails": [sha("bob@example.com")], "user_agent": "curl/8.5.0"},
        0.99,
        "EUR",
    ),
}
EXPECTED_REJECTS = {
    "1004": ["no_identifier: no ip_address, device_id, email or phone survives"],
    "1006": ["invalid_currency: 'XYZ' is not an ISO 4217 currency code"],
    "1007": ["purchase_without_amount: PURCHASE needs amount"],
}
EXPECTED_NEW = {
    "1008": purchase(
        "1008",
        "2026-11-03T23:00:00.000Z",
        {
            "hashed_emails": [sha("erin@example.com")],
            "hashed_phone_number": sha("+447700900123"),
            "ip_address": "203.0.113.99",
        },
        19.9,
        "GBP",
    ),
    "1009": purchase(
        "1009",
        "2026-11-04T23:45:10.001Z",
        {"ip_address": "198.51.100.7", "user_agent": "Mozilla/5.0 (iPhone)"},
        7,
        "BRL",
    ),
}
RAW_PERSONAL = ["Ana@Example.org", "ana@example.org", "020 7946 0958", "555-0100",
                "BOB@example.com", "bob@example.com", "tester@example.net", "carol@example.com",
                "dave@example.com", "Erin@Example.com", "07700 900123"]


def _server_bin() -> Path | None:
    """Where initdb, pg_ctl and postgres are: Debian's versioned directory, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit()
                   else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Postgres:
    bin_dir: Path
    data: Path
    port: int
    as_user: list[str]

    def psql(self, sql: str) -> None:
        psql = self.bin_dir / "psql" if (self.bin_dir / "psql").exists() else "psql"
        proc = subprocess.run(
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "postgres", "-d", "shop", "-c", sql],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PGPASSWORD": PASSWORD},
        )
        assert proc.returncode == 0, proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], timeout: int = 120) -> None:
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=env)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    bin_dir = _server_bin()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no PostgreSQL server binary (initdb): .ci/run installs it")
        pytest.skip("no PostgreSQL server binary (initdb) on this machine")
    root = Path(tempfile.mkdtemp(prefix="spotify-capi-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    server = Postgres(bin_dir, root / "data", _free_port(), as_user)
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    if as_user:
        os.chown(password_file, nobody.pw_uid, nobody.pw_gid)
    _run([*as_user, str(bin_dir / "initdb"), "-D", str(server.data), "-U", "postgres",
          "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
          "--encoding=UTF8", "--no-locale"])
    options = (f"-h 127.0.0.1 -p {server.port} -k {root} -c fsync=off "
               f"-c timezone={SERVER_TIME_ZONE}")
    _run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(server.data), "-l", str(root / "log"),
          "-o", options, "-w", "-t", "60", "start"])
    try:
        _run([*as_user, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port),
              "-U", "postgres", "shop"])
        yield server
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(server.data), "-m",
                        "immediate", "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    executable = _meltano_executable()
    if executable is None:
        pytest.fail("the meltano CLI is not installed: `make test` installs it in .venv")
    work_dir = tmp_path_factory.mktemp("meltano-postgres")
    sys_dir = work_dir / "sys"
    sys_dir.mkdir()
    for kind, name in (("extractors", "tap-postgres"), ("loaders", "target-spotify-conversions")):
        if not (REPO / ".meltano" / kind / name / "venv" / "bin" / name).exists():
            installer = Meltano(executable, REPO / ".meltano", work_dir)
            proc = installer("install", "--plugin-type", kind, name, timeout=900)
            assert proc.returncode == 0, f"meltano install failed:\n{proc.stdout}\n{proc.stderr}"
    for kind in ("extractors", "loaders"):
        (sys_dir / kind).symlink_to(REPO / ".meltano" / kind, target_is_directory=True)
    runner = Meltano(executable, sys_dir, work_dir)
    runner.env = {k: v for k, v in runner.env.items() if not k.startswith(("TAP_POSTGRES", "PG"))}
    return runner


@dataclass
class Run:
    returncode: int
    output: str
    delivered: dict[str, dict[str, Any]]
    rejects: list[dict[str, Any]]


def _run_pipeline(meltano: Meltano, postgres: Postgres, name: str) -> Run:
    rejects_file = meltano.work_dir / f"rejects-{name}.jsonl"
    with FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID) as fake:
        proc = meltano(
            "--environment=test", "run", *PIPELINE,
            env={
                "TAP_POSTGRES_HOST": "127.0.0.1",
                "TAP_POSTGRES_PORT": str(postgres.port),
                "TAP_POSTGRES_USER": "postgres",
                "TAP_POSTGRES_PASSWORD": PASSWORD,
                "TAP_POSTGRES_DATABASE": "shop",
                "TAP_POSTGRES_FILTER_SCHEMAS": '["public"]',
                "TAP_POSTGRES__SELECT": json.dumps([f"{STREAM}.*"]),
                "TAP_POSTGRES__METADATA": json.dumps({STREAM: {
                    "replication-method": "INCREMENTAL", "replication-key": "updated_at"}}),
                "PGTZ": "UTC",  # the recipe's UTC session time zone
                "SPOTIFY_CAPI_TEST_API_URL": fake.url,
                "SPOTIFY_CAPI_TEST_AUTH_TOKEN": TOKEN,
                "SPOTIFY_CAPI_TEST_CONNECTION_ID": CONNECTION_ID,
                "TARGET_SPOTIFY_CONVERSIONS_REJECTS_FILE": str(rejects_file),
                "TARGET_SPOTIFY_CONVERSIONS_STREAM_MAPS": json.dumps(STREAM_MAPS),
            },
        )
        delivered = fake.accepted
        assert fake.contract_violations == []
    rejects = []
    if rejects_file.exists():
        rejects = [json.loads(line) for line in rejects_file.read_text().splitlines() if line]
    return Run(proc.returncode, proc.stdout + proc.stderr, delivered, rejects)


@dataclass
class Runs:
    first: Run
    second: Run


@pytest.fixture(scope="module")
def runs(meltano: Meltano, postgres: Postgres) -> Runs:
    postgres.psql(CREATE)
    postgres.psql(f"INSERT INTO orders ({COLUMNS}) VALUES {FIRST_ROWS}")
    first = _run_pipeline(meltano, postgres, "first")
    assert first.returncode == 0, first.output[-4000:]
    postgres.psql(f"INSERT INTO orders ({COLUMNS}) VALUES {NEW_ROWS}")
    second = _run_pipeline(meltano, postgres, "second")
    assert second.returncode == 0, second.output[-4000:]
    return Runs(first, second)


def test_every_delivered_event_matches_its_row_field_by_field(runs: Runs) -> None:
    assert sorted(runs.first.delivered) == sorted(EXPECTED_FIRST), runs.first.output[-3000:]
    for event_id, expected in EXPECTED_FIRST.items():
        assert runs.first.delivered[event_id] == expected


def test_invalid_rows_are_rejected_and_filtered_rows_are_not_sent(runs: Runs) -> None:
    reasons = {reject["event_id"]: reject["reasons"] for reject in runs.first.rejects}
    assert reasons == EXPECTED_REJECTS
    assert all(reject["stream"] == STREAM for reject in runs.first.rejects)
    assert "1005" not in runs.first.delivered  # __filter__: status != 'test'


def test_incremental_second_run_sends_only_the_new_rows(runs: Runs) -> None:
    assert runs.second.delivered == EXPECTED_NEW, runs.second.output[-3000:]
    # The SDK's bookmark is inclusive (updated_at >= the last value), so the row it stopped
    # at, 1007, is read once more; it is rejected again, and nothing older comes back.
    assert [reject["event_id"] for reject in runs.second.rejects] == ["1007"]


def test_no_personal_data_in_logs_or_rejects(runs: Runs) -> None:
    for run in (runs.first, runs.second):
        text = run.output + json.dumps(run.rejects)
        leaked = [value for value in RAW_PERSONAL if value in text]
        assert not leaked
        assert TOKEN not in run.output
        assert PASSWORD not in run.output
