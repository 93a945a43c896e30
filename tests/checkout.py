"""A copy of this checkout as a user would get it: the files git knows, nothing built.

Tests that install the target (pip, Meltano) install from a copy so that a build never writes
into the working tree (setuptools leaves build/ and *.egg-info behind) and nothing that git
ignores (.venv, .meltano, a stale compiled module) reaches the install.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Variables from the caller's shell that would change what an install or a run does.
SCRUBBED_PREFIXES = ("TARGET_SPOTIFY_CONVERSIONS_", "TAP_JSONL_", "MELTANO_", "VIRTUAL_ENV",
                     "PYTHONPATH")


def copy_checkout(dest: Path) -> Path:
    """Copy the files git tracks (as they are now, edits included) and new untracked ones."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the variables that would steer a run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    return {**env, **extra}


def compiled_by_setup() -> tuple[str, ...]:
    """setup.py's COMPILED list, read without running setup.py (it would build)."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED list")
