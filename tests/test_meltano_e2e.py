"""End to end through the real Meltano CLI.

`meltano --environment=test run tap-jsonl target-spotify-conversions` reads
sample/events.jsonl and delivers it, not as a dry run, to a FakeSpotify server started here.
The run uses the repository's own meltano.yml and sample, and the plugin venvs that
`make run` / `make test` installed under .meltano/ (installed here if missing). Everything
Meltano writes (system database with the state, logs, run dirs) goes to a temporary
MELTANO_SYS_DIR_ROOT, whose `extractors/` and `loaders/` link to the installed venvs; the
target's rejects file goes to tmp_path too. So the test leaves the repository as it was.

sample/expected.json, written by sample/make_events.py with the sample, says which records
the target accepts and which it rejects (and why).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from target_spotify_conversions.sandbox import FakeSpotify

REPO = Path(__file__).resolve().parents[1]
EXPECTED = json.loads((REPO / "sample" / "expected.json").read_text(encoding="utf-8"))
SAMPLE_LINES = (REPO / "sample" / "events.jsonl").read_text(encoding="utf-8").splitlines()
PIPELINE = ["tap-jsonl", "target-spotify-conversions"]
STATE_ID = "test:tap-jsonl-to-target-spotify-conversions"
TOKEN = "e2e-test-token-0123456789"
CONNECTION_ID = "6f1c2a9e-3b7d-4c58-9e21-0d4f8a7b5c33"
RUN_TIMEOUT = 300
# Variables from the caller's shell that would change what the runs do.
SCRUBBED_PREFIXES = ("TARGET_SPOTIFY_CONVERSIONS_", "TAP_JSONL_", "SPOTIFY_CAPI_TEST_", "MELTANO_")


def _meltano_executable() -> Path | None:
    candidates = [
        Path(sys.executable).parent / "meltano",
        REPO / ".venv" / "bin" / "meltano",
        REPO / ".venv-meltano" / "bin" / "meltano",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which("meltano")
    return Path(found) if found else None


def _plugins_installed() -> bool:
    meltano_dir = REPO / ".meltano"
    return all(
        (meltano_dir / kind / name / "venv" / "bin" / name).exists()
        for kind, name in (("extractors", "tap-jsonl"), ("loaders", "target-spotify-conversions"))
    )


@dataclass
class RunResult:
    returncode: int
    output: str
    delivered: list[str] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    received: list[dict] = field(default_factory=list)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


class Meltano:
    """Runs the meltano CLI in the repository with an isolated system directory."""

    def __init__(self, executable: Path, sys_dir: Path, work_dir: Path) -> None:
        self.executable = executable
        self.work_dir = work_dir
        self.by_connection: dict[str, set[str]] = {}  # of the last run: what each connection got
        base = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        self.env = {
            **base,
            "MELTANO_PROJECT_ROOT": str(REPO),
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_AUTO_INSTALL": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The project root is the repository: the delivery ledger goes beside the test's
            # other files instead.
            "TARGET_SPOTIFY_CONVERSIONS_LEDGER_URL": f"sqlite:///{work_dir / 'ledger.sqlite'}",
        }

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: int = RUN_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.executable), *args],
            cwd=REPO,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run_pipeline(
        self,
        name: str,
        *flags: str,
        env: dict[str, str] | None = None,
        credentials: dict[str, str] | None = None,
        ledger: str | None = None,
    ) -> RunResult:
        """One `meltano run` against a fresh FakeSpotify; what it received and rejected.

        `env`: more settings from the environment; `credentials`: more token and connection
        pairs the fake accepts. Each run keeps its own delivery ledger unless `ledger` names
        another run's: the runs here check that the same events get the same ids, which a
        shared ledger would hold back."""
        rejects_file = self.work_dir / f"rejects-{name}.jsonl"
        ledger_file = self.work_dir / f"ledger-{ledger or name}.sqlite"
        report_file = self.work_dir / f"report-{name}.json"
        with FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID, credentials=credentials) as fake:
            proc = self(
                "--environment=test",
                "run",
                *flags,
                *PIPELINE,
                env={
                    "SPOTIFY_CAPI_TEST_API_URL": fake.url,
                    "SPOTIFY_CAPI_TEST_AUTH_TOKEN": TOKEN,
                    "SPOTIFY_CAPI_TEST_CONNECTION_ID": CONNECTION_ID,
                    "TARGET_SPOTIFY_CONVERSIONS_REJECTS_FILE": str(rejects_file),
                    "TARGET_SPOTIFY_CONVERSIONS_SUMMARY_FILE": str(report_file),
                    "TARGET_SPOTIFY_CONVERSIONS_LEDGER_URL": f"sqlite:///{ledger_file}",
                    **(env or {}),
                },
            )
            delivered = list(fake.accepted_ids())
            self.by_connection = fake.accepted_ids_by_connection()
            received = list(fake.accepted.values())
        rejects = []
        if rejects_file.exists():
            rejects = [
                json.loads(line)
                for line in rejects_file.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        output = proc.stdout + proc.stderr
        return RunResult(proc.returncode, output, delivered, rejects, report, received)


@pytest.fixture(scope="module")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    executable = _meltano_executable()
    if executable is None:
        pytest.fail("the meltano CLI is not installed: `make test` installs it in .venv")
    work_dir = tmp_path_factory.mktemp("meltano-e2e")
    sys_dir = work_dir / "sys"
    sys_dir.mkdir()
    if not _plugins_installed():
        # Normally `make test` has done this; install into the repository's .meltano.
        installer = Meltano(executable, REPO / ".meltano", work_dir)
        proc = installer("install", timeout=900)
        assert proc.returncode == 0, f"meltano install failed:\n{proc.stdout}\n{proc.stderr}"
    for kind in ("extractors", "loaders"):
        (sys_dir / kind).symlink_to(REPO / ".meltano" / kind, target_is_directory=True)
    return Meltano(executable, sys_dir, work_dir)


@dataclass
class Runs:
    first: RunResult
    state: dict
    rerun: RunResult
    full_refresh: RunResult
    refresh_with_ledger: RunResult


@pytest.fixture(scope="module")
def runs(meltano: Meltano) -> Runs:
    first = meltano.run_pipeline("first")
    assert first.returncode == 0, f"first meltano run failed:\n{first.tail()}"
    proc = meltano("state", "get", STATE_ID)
    assert proc.returncode == 0, f"meltano state get failed:\n{proc.stdout}\n{proc.stderr}"
    state = json.loads(proc.stdout)
    rerun = meltano.run_pipeline("rerun")
    assert rerun.returncode == 0, f"second meltano run failed:\n{rerun.tail()}"
    full_refresh = meltano.run_pipeline("full-refresh", "--full-refresh")
    assert full_refresh.returncode == 0, f"--full-refresh run failed:\n{full_refresh.tail()}"
    refresh_with_ledger = meltano.run_pipeline("ledger", "--full-refresh", ledger="first")
    assert refresh_with_ledger.returncode == 0, refresh_with_ledger.tail()
    return Runs(first, state, rerun, full_refresh, refresh_with_ledger)


def _raw_personal_values(line_numbers: Iterable[int]) -> set[str]:
    """The raw e-mail addresses and phone numbers (not pre-hashed) on the given sample lines."""
    raw: set[str] = set()
    for number in line_numbers:
        record = json.loads(SAMPLE_LINES[number - 1])
        for key in ("email", "phone"):
            values = record.get(key)
            for value in values if isinstance(values, list) else [values]:
                if not isinstance(value, str) or len(value.strip()) == 64:  # absent or hashed
                    continue
                if "@" in value or sum(c.isdigit() for c in value) >= 10:
                    raw.add(value.strip())
    return raw


def test_sample_expectations_are_consistent() -> None:
    assert EXPECTED["records"] == len(SAMPLE_LINES)
    assert EXPECTED["accepted"] + EXPECTED["rejected"] == EXPECTED["records"]
    assert len(EXPECTED["rejects"]) == EXPECTED["rejected"]


def test_delivers_exactly_the_valid_sample_events(runs: Runs) -> None:
    delivered = set(runs.first.delivered)
    assert len(delivered) == EXPECTED["accepted"], runs.first.tail()
    assert set(EXPECTED["accepted_event_ids"]) <= delivered
    rejected_ids = {r["event_id"] for r in EXPECTED["rejects"]}
    assert not delivered & rejected_ids


def test_rejects_the_demo_records(runs: Runs) -> None:
    rejects = runs.first.rejects
    assert len(rejects) == EXPECTED["rejected"], runs.first.tail()
    assert {r["event_id"] for r in rejects} == {r["event_id"] for r in EXPECTED["rejects"]}
    for reject in rejects:
        assert reject["stream"] == "conversions"
        assert reject["reasons"], reject
    # The rejects file holds no raw e-mail address or phone number.
    text = json.dumps(rejects)
    assert "@example." not in text
    for raw in _raw_personal_values(r["line"] for r in EXPECTED["rejects"]):
        assert raw not in text


def test_the_run_report_agrees_with_what_the_api_received(runs: Runs) -> None:
    report, first = runs.first.report, runs.first
    assert report["outcome"] == "completed"
    assert report["dry_run"] is False
    assert report["events_delivered"] == len(first.delivered) == EXPECTED["accepted"]
    assert report["records_rejected"] == len(first.rejects) == EXPECTED["rejected"]
    assert report["records_read"] == EXPECTED["records"]
    assert sum(report["rejected_by_reason"].values()) >= report["records_rejected"]
    for name, share in report["identifier_coverage"].items():
        carried = sum(name in event["user_data"] for event in first.received)
        assert share == round(carried / len(first.received), 4), name


def test_run_log_holds_no_secret_or_personal_data(runs: Runs) -> None:
    raw_values = _raw_personal_values(range(1, len(SAMPLE_LINES) + 1))
    for run in (runs.first, runs.rerun, runs.full_refresh):
        assert TOKEN not in run.output
        assert "@example." not in run.output
        leaked = sorted(raw for raw in raw_values if raw in run.output)
        assert not leaked, f"raw personal data in the run log: {len(leaked)} values"


def test_state_is_stored(runs: Runs) -> None:
    singer_state = runs.state.get("singer_state", runs.state)
    bookmarks = singer_state["bookmarks"]
    assert "conversions" in bookmarks, runs.state


def test_rerun_with_state_sends_the_same_event_ids(runs: Runs) -> None:
    # tap-jsonl 0.3.1 stores the file's modification time as its bookmark but never reads it
    # back (it looks for the key `_sdc_last_modified` in the partition state, where the SDK
    # keeps `replication_key_value`), so a run with state re-reads the whole file. The
    # target must then send the same event ids, which Spotify deduplicates.
    assert runs.rerun.returncode == 0
    assert set(runs.rerun.delivered) == set(runs.first.delivered), runs.rerun.tail()


def test_full_refresh_with_the_first_runs_ledger_sends_nothing_again(runs: Runs) -> None:
    """The delivery ledger holds what the first run delivered: a full refresh reads every
    record again and sends none of them; the rejected ones are rejected again."""
    again = runs.refresh_with_ledger
    assert again.delivered == [], again.tail()
    assert again.report["already_delivered"] == len(runs.first.delivered)
    assert again.report["events_delivered"] == 0
    assert {r["event_id"] for r in again.rejects} == {r["event_id"] for r in runs.first.rejects}


def test_full_refresh_sends_the_same_event_ids_again(runs: Runs) -> None:
    assert set(runs.full_refresh.delivered) == set(runs.first.delivered)
    assert {r["event_id"] for r in runs.full_refresh.rejects} == {
        r["event_id"] for r in runs.first.rejects
    }


def test_connections_set_from_the_environment_route_the_stream(meltano: Meltano) -> None:
    """The documented environment form: Meltano parses the object and the target routes by
    it; the top-level pair (from the test environment) gets nothing the stream routes."""
    brand_id, brand_token = "0c3d5e7f-1a2b-4c6d-8e9f-a1b2c3d4e5f6", "e2e-brand-a-token-5566"
    connections = {"brand_a": {"capi_connection_id": brand_id, "auth_token": brand_token}}
    run = meltano.run_pipeline(
        "connections",
        env={
            "TARGET_SPOTIFY_CONVERSIONS_CONNECTIONS": json.dumps(connections),
            "TARGET_SPOTIFY_CONVERSIONS_STREAM_CONNECTIONS": '{"conversions": "brand_a"}',
        },
        credentials={brand_token: brand_id},
    )
    assert run.returncode == 0, run.tail()
    assert set(meltano.by_connection) == {brand_id}  # nothing for the top-level pair
    assert len(meltano.by_connection[brand_id]) == EXPECTED["accepted"]
    assert set(EXPECTED["accepted_event_ids"]) <= meltano.by_connection[brand_id]
    assert run.report["connections"]["brand_a"]["events_delivered"] == EXPECTED["accepted"]
    assert run.report["connections"]["default"]["events_delivered"] == 0
    assert brand_token not in run.output
    assert TOKEN not in run.output
