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


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 kB file system (tmpfs), mounted for the test: a full disk is then a real
    ENOSPC, with no mock of open or write. Needs root, as the test machine has."""
    import subprocess

    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> None:
    """Fill a small disk to its last page."""
    import os

    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
