from __future__ import annotations

import inspect
import subprocess
import sys
import types
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


# A test is "slow" when it starts a program: the real CLI, Meltano, PostgreSQL, pip, a shell.
# Each test is marked by what it does: its own code, and the module's helpers it calls, are
# read for the calls that start one. The guard below makes the tiers honest: a test left in
# the fast tier that starts a program fails, naming the fix. (The mapping workers are the
# package's own processes, started by the code under test, and are allowed in both tiers.)
_STARTS_A_PROGRAM = ("run_target(", "start_target(", "subprocess", "target_sync_test")


def _calls_start_a_program(function: object, seen: set[object]) -> bool:
    """Whether a test function, or a helper function or class of ours it names, starts one."""
    if function in seen or not isinstance(function, (types.FunctionType, type)):
        return False
    seen.add(function)
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if any(marker in source for marker in _STARTS_A_PROGRAM):
        return True
    if isinstance(function, type):
        return False  # its methods' source was read with the class's
    module = sys.modules.get(function.__module__)
    helpers = (getattr(module, name, None) for name in function.__code__.co_names)
    return any(
        _calls_start_a_program(helper, seen)
        for helper in helpers
        if isinstance(helper, (types.FunctionType, type)) and _is_ours(helper.__module__)
    )


def _is_ours(module: str) -> bool:
    """The repository's own test helpers and scripts (the package starts no program)."""
    return module.split(".")[0] in ("tests", "scripts") or module.startswith("test_")


def _uses_a_program_fixture(item: pytest.Item) -> bool:
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is None:
        return False
    for name in fixtures.names_closure:
        if name == "_fast_tests_start_no_program":
            continue
        for definition in fixtures.name2fixturedefs.get(name, ()):
            if _calls_start_a_program(definition.func, set()):
                return True
    return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and (
            _calls_start_a_program(function, set()) or _uses_a_program_fixture(item)
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tests_start_no_program(request, monkeypatch):
    if request.node.get_closest_marker("slow"):
        return
    real_init = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        argv = [args] if isinstance(args, (str, bytes)) else list(args)
        own_worker = argv[:1] == [sys.executable] and any(
            "worker_main" in str(part) for part in argv
        )
        if not own_worker:
            raise AssertionError(
                f"{request.node.nodeid} starts a program ({argv[:1]}) but is in the fast tier: "
                "call it through run_target/subprocess in the test itself, or mark it "
                "@pytest.mark.slow"
            )
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


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
