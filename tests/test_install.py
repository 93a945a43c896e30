"""The build a user gets: `pip install <source>` and `pip install -e <source>` in a fresh venv.

Each test installs a copy of this checkout (the files git knows, as they are now) into a new
virtual environment, with pip as set up on this machine (its cache makes a re-install quick),
and runs the installed CLI the way a user does. What they show:

- a plain install succeeds within a couple of minutes and runs pure Python, as its start-up
  log line says;
- in an editable install an edited module takes effect in the next run;
- a compiled leftover beside the sources stops the CLI, naming the file and `make clean`.
"""

from __future__ import annotations

import subprocess
import sys
import time
import venv
from pathlib import Path

from tests.checkout import clean_env, copy_checkout
from tests.harness import purchase, singer_lines

# A plain install takes about a minute on a busy 2-core machine with pip's cache warm.
INSTALL_SECONDS = 240
BUILD_LINE = "Build: pure Python"


def _venv_with(tmp_path: Path, *pip_args: str) -> tuple[Path, float]:
    """A fresh venv with the target installed by `pip install *pip_args`; and the seconds."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    started = time.monotonic()
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", *pip_args],
        capture_output=True, text=True, env=clean_env(), timeout=900, check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return env_dir / "bin", seconds


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


def test_pip_install_of_the_source_is_quick_and_runs_pure_python(tmp_path):
    source = copy_checkout(tmp_path / "source")
    bin_dir, seconds = _venv_with(tmp_path, str(source))
    print(f"pip install <source> into a fresh venv: {seconds:.1f} s")
    assert seconds < INSTALL_SECONDS
    where = "import target_spotify_conversions as p; print(p.__file__)"
    installed = subprocess.run(  # from tmp_path: the checkout must not be on sys.path
        [str(bin_dir / "python"), "-c", where], cwd=tmp_path, capture_output=True, text=True,
        env=clean_env(), check=True,
    ).stdout
    assert "site-packages" in installed  # the installed copy, not the checkout
    assert not list(Path(installed.strip()).parent.glob("*.so"))

    run = _dry_run(bin_dir, tmp_path / "run")
    assert run.returncode == 0, run.stderr[-3000:]
    [build] = [line for line in run.stderr.splitlines() if "Build:" in line]
    assert f"{BUILD_LINE} {sys.version_info.major}.{sys.version_info.minor}." in build
    assert "(no compiled modules)" in build
    assert (tmp_path / "run" / "dry-run.jsonl").read_text().count('"event_id"') == 3


def test_an_edited_module_of_an_editable_install_runs_next_time(tmp_path):
    source = copy_checkout(tmp_path / "source")
    bin_dir, _ = _venv_with(tmp_path, "-e", str(source))
    first = _dry_run(bin_dir, tmp_path / "first")
    assert first.returncode == 0, first.stderr[-3000:]
    assert BUILD_LINE in first.stderr

    target_py = source / "target_spotify_conversions" / "target.py"
    text = target_py.read_text()
    assert text.count(f'"{BUILD_LINE} ') == 1
    target_py.write_text(text.replace(f'"{BUILD_LINE} ', '"Build (edited here): pure Python '))
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
