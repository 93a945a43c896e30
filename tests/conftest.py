from __future__ import annotations

from pathlib import Path

import pytest

from target_spotify_conversions.sandbox import FakeSpotify
from tests.harness import CONNECTION_ID, TOKEN


@pytest.fixture
def fake():
    """A strict fake Spotify API; a test fails if the target ever broke the contract."""
    with FakeSpotify(token=TOKEN, connection_id=CONNECTION_ID) as server:
        yield server
        assert server.contract_violations == []


# A test is "slow" when it starts processes: the real CLI, Meltano, PostgreSQL. Marked by what
# its module does, so a new test lands in the right tier without anyone thinking of it.
# (Meltano and PostgreSQL are started with subprocess; a module that only reads meltano.yml
# starts nothing.)
_PACKAGE = Path(__file__).resolve().parent.parent / "target_spotify_conversions"
_PROCESS_MARKERS = ("run_target(", "start_target(", "subprocess", "target_sync_test")
_slow_modules: dict[str, bool] = {}


def _starts_processes(path) -> bool:
    key = str(path)
    if key not in _slow_modules:
        text = path.read_text(encoding="utf-8")
        _slow_modules[key] = any(marker in text for marker in _PROCESS_MARKERS)
    return _slow_modules[key]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _starts_processes(item.path):
            item.add_marker(pytest.mark.slow)
