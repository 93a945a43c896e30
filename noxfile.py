"""The fast test tier on every Python this project supports (`make test-versions`).

CI runs the whole suite on the project's own Python (3.11, `make test`) and this tier on 3.10,
3.12 and 3.13. Interpreters are found on PATH, or where pyenv installs them
(/root/.pyenv/versions/X.Y.Z/bin), so a machine with pyenv needs no `pyenv global`.
"""

from __future__ import annotations

import glob
import os

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
