"""The fast test tier on every Python this project supports (`make test-versions`).

CI runs the whole suite on the project's own Python (3.11, `make test`) and this tier on 3.10,
3.12 and 3.13. Interpreters are found on PATH, or where pyenv installs them
(/root/.pyenv/versions/X.Y.Z/bin), so a machine with pyenv needs no `pyenv global`.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import nox

VERSIONS = ("3.10", "3.11", "3.12", "3.13")
nox.options.sessions = ["fast"]
nox.options.error_on_missing_interpreters = True

# pyenv's versions on PATH, newest patch release last, so nox finds `python3.10` there.
_pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
for _version in VERSIONS:
    for _bin in sorted(glob.glob(f"{_pyenv}/versions/{_version}.*/bin"))[-1:]:
        os.environ["PATH"] = _bin + os.pathsep + os.environ["PATH"]


@nox.session(python=list(VERSIONS))
def fast(session: nox.Session) -> None:
    """Every test that starts no process: mapping, hashing, settings, checkpoints, ..."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                *session.posargs)


# What the compiled tier leaves out of its copy of the checkout: above all the package's
# sources, which would be imported instead of the compiled install.
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".nox", ".meltano", "output", "build", "dist", "*.egg-info",
    "__pycache__", ".*_cache", ".hypothesis", "target_spotify_conversions",
)


@nox.session(python="3.11")
def compiled(session: nox.Session) -> None:
    """The fast tier against the build `pip install <source>` gives a user: its per-record
    modules compiled by mypyc (setup.py), which checks types the pure build does not.

    Run from a copy of the checkout without the package's sources, so the tests import the
    installed build. tests/test_architecture.py and tests/test_setup.py read those sources, so
    they are left out here (the other tiers run them)."""
    session.install(".[dev]")  # not editable: built, and compiled where a C compiler is
    copy = Path(session.create_tmp()) / "checkout"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(Path.cwd(), copy, ignore=_NOT_COPIED)
    session.chdir(copy)
    session.run("python", "-c", _REQUIRE_COMPILED)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                "--ignore", "tests/test_architecture.py", "--ignore", "tests/test_setup.py",
                *session.posargs)


_REQUIRE_COMPILED = (
    "import sys, target_spotify_conversions as p; "
    "print('compiled modules:', len(p.COMPILED_MODULES), 'in', p.__file__); "
    "sys.exit(0 if p.COMPILED_MODULES else 'the install is not compiled: see setup.py')"
)
