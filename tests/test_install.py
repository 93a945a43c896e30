"""The build a user gets: `pip install <source>` and `pip install -e <source>` in a fresh venv.

Each test installs a copy of this checkout (the files git knows, as they are now) into a new
virtual environment, with pip as set up on this machine (its cache makes a re-install quick),
and runs the installed CLI the way a user does. What they show:

- a plain install succeeds within a few minutes and, where a C compiler is found, compiles
  every module setup.py lists (and nothing a stale build/ holds), as its start-up log line
  says; it maps as the checkout does;
- TARGET_SPOTIFY_CONVERSIONS_PURE_PYTHON=1 at install gives a pure build, which says why;
- in an editable install nothing is compiled and an edited module takes effect in the next run;
- a compiled leftover beside the sources stops the CLI, naming the file and `make clean`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from target_spotify_conversions import PURE_PYTHON_SWITCH
from tests.checkout import clean_env, compiled_by_setup, copy_checkout
from tests.harness import purchase, singer_lines

# A plain install compiles for about a minute on a quiet 2-core machine with pip's cache warm;
# a busy one takes up to three times as long.
INSTALL_SECONDS = 300
BUILD_LINE = "Build: pure Python"
PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}."


def _venv_with(
    tmp_path: Path, *pip_args: str, env: dict[str, str] | None = None
) -> tuple[Path, float]:
    """A fresh venv with the target installed by `pip install *pip_args`; and the seconds."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    started = time.monotonic()
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", *pip_args],
        capture_output=True, text=True, env=env or clean_env(), timeout=900, check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return env_dir / "bin", seconds


def _installed_package(bin_dir: Path, tmp_path: Path) -> Path:
    where = "import target_spotify_conversions as p; print(p.__file__)"
    installed = subprocess.run(  # from tmp_path: the checkout must not be on sys.path
        [str(bin_dir / "python"), "-c", where], cwd=tmp_path, capture_output=True, text=True,
        env=clean_env(), check=True,
    ).stdout
    assert "site-packages" in installed  # the installed copy, not the checkout
    return Path(installed.strip()).parent


def _build_line(run: subprocess.CompletedProcess[str]) -> str:
    [build] = [line for line in run.stderr.splitlines() if "Build:" in line]
    return build


def _dry_run(bin_dir: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(
        '{"dry_run": true, "dry_run_file": "dry-run.jsonl", "rejects_file": "rejects.jsonl"}'
    )
    lines = "\n".join(singer_lines([purchase(i) for i in range(3)])) + "\n"
    return subprocess.run(
        [str(bin_dir / "target-spotify-conversions"), "--config", "config.json"],
        cwd=workdir, input=lines, capture_output=True, text=True, env=clean_env(), timeout=300,
        check=False,
    )


def test_pip_install_of_the_source_compiles_the_mapping_and_maps_as_the_checkout(tmp_path):
    source = copy_checkout(tmp_path / "source")
    # A checkout's build/ from an earlier install that compiled other modules: pip builds in
    # place, and none of it may reach the wheel.
    suffix = EXTENSION_SUFFIXES[0]
    for lib in ("lib", f"lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"):
        stale = source / "build" / lib / "target_spotify_conversions" / f"delivery{suffix}"
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"\x7fELF stale")
    bin_dir, seconds = _venv_with(tmp_path, str(source))
    print(f"pip install <source> into a fresh venv: {seconds:.1f} s")
    assert seconds < INSTALL_SECONDS
    package = _installed_package(bin_dir, tmp_path)
    built = sorted(path.name.partition(".")[0] for path in package.glob("*.so"))

    run = _dry_run(bin_dir, tmp_path / "run")
    assert run.returncode == 0, run.stderr[-3000:]
    build = _build_line(run)
    if shutil.which("cc") is None:  # no compiler: pure Python, and the line says so
        assert not built
        assert f"pure Python {sys.version_info.major}." in build
        assert "no C compiler at install" in build
        return
    assert built == sorted([*compiled_by_setup(), "_compiled__mypyc"])
    assert f"compiled with mypyc, {PYTHON}" in build
    assert f"({len(compiled_by_setup())} modules)" in build
    # The same events, byte for byte, as this checkout's own (pure) build maps them.
    checkout = _dry_run(Path(sys.executable).parent, tmp_path / "checkout-run")
    assert checkout.returncode == 0, checkout.stderr[-3000:]
    assert BUILD_LINE in _build_line(checkout)
    assert _events(tmp_path / "run") == _events(tmp_path / "checkout-run")
    assert len(_events(tmp_path / "run")) == 3


def test_the_pure_python_switch_at_install_gives_a_pure_build_that_says_why(tmp_path):
    source = copy_checkout(tmp_path / "source")
    bin_dir, _ = _venv_with(tmp_path, str(source), env=clean_env(**{PURE_PYTHON_SWITCH: "1"}))
    assert not list(_installed_package(bin_dir, tmp_path).glob("*.so"))
    run = _dry_run(bin_dir, tmp_path / "run")
    assert run.returncode == 0, run.stderr[-3000:]
    build = _build_line(run)
    assert f"{BUILD_LINE} {sys.version_info.major}.{sys.version_info.minor}." in build
    for why in ("an editable install", "no C compiler at install", f"{PURE_PYTHON_SWITCH} set"):
        assert why in build
    assert len(_events(tmp_path / "run")) == 3


def _events(workdir: Path) -> list[str]:
    """The dry-run file's events, each as its JSON, sorted (requests may be written in any
    order)."""
    lines = (workdir / "dry-run.jsonl").read_text(encoding="utf-8").splitlines()
    events = [e for line in lines for e in json.loads(line)["conversion_events"]["events"]]
    return sorted(json.dumps(event, sort_keys=True) for event in events)


def test_an_edited_module_of_an_editable_install_runs_next_time(tmp_path):
    source = copy_checkout(tmp_path / "source")
    bin_dir, _ = _venv_with(tmp_path, "-e", str(source))
    assert not list((source / "target_spotify_conversions").glob("*.so"))  # never compiled
    first = _dry_run(bin_dir, tmp_path / "first")
    assert first.returncode == 0, first.stderr[-3000:]
    assert BUILD_LINE in first.stderr

    target_py = source / "target_spotify_conversions" / "target.py"
    text = target_py.read_text()
    assert text.count('"Build: %s"') == 1
    target_py.write_text(text.replace('"Build: %s"', '"Build (edited here): %s"'))
    second = _dry_run(bin_dir, tmp_path / "second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Build (edited here): pure Python" in second.stderr

    # A compiled module left over from an earlier build would shadow its edited source.
    leftover = source / "target_spotify_conversions" / "mapping.cpython-311-x86_64-linux-gnu.so"
    leftover.write_bytes(b"\x7fELF stale")
    third = _dry_run(bin_dir, tmp_path / "third")
    assert third.returncode != 0
    assert leftover.name in third.stderr
    assert "make clean" in third.stderr
    assert not (tmp_path / "third" / "dry-run.jsonl").exists()
