"""Compiles the per-record modules to C with mypyc when it can; without it only speed changes.

The modules in COMPILED are what runs for every record: the mapping in the workers (plain
functions and data, no SDK), and the reading, batching and bookkeeping in the main process.
mypyc turns them into extension modules that Python loads in place of the .py files: the same
code and the same results, with less CPU per record. Everything else is in pyproject.toml.

The build falls back to pure Python, with a warning, when no C compiler is found (each
extension is optional) or mypyc refuses the code, and skips compiling altogether when the
environment sets TARGET_SPOTIFY_CONVERSIONS_PURE_PYTHON=1. The second log line of every run
says which one is installed ("Mapping: compiled with mypyc").
"""

from __future__ import annotations

import os
import warnings

from setuptools import setup

PACKAGE = "target_spotify_conversions"
COMPILED = (
    # what a mapping worker runs for each record
    "chunk_mapping",
    "event_id",
    "event_names",
    "event_time",
    "hashing",
    "input_formats",
    "mapping",
    "problems",
    "taxonomy",
    "validation",
    "values",
    # what the reading process runs for each record, line and request
    "checkpoints",
    "delivery",
    "escaping",
    "messages",
    "pipeline",
    "reader",
    "rejects",
    "report",
    "transport",
)
PURE_PYTHON_SWITCH = "TARGET_SPOTIFY_CONVERSIONS_PURE_PYTHON"


def extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get(PURE_PYTHON_SWITCH, "") not in ("", "0"):
        return []
    from mypyc.build import mypycify

    try:
        modules = mypycify(
            [f"{PACKAGE}/{name}.py" for name in COMPILED],
            opt_level="3",
            group_name=f"{PACKAGE}._compiled",  # the shared library lives inside the package
        )
    except (Exception, SystemExit) as exc:  # mypyc refuses the code: install it uncompiled
        warnings.warn(f"mypyc cannot compile the modules ({exc!r}): pure Python", stacklevel=1)
        return []
    for module in modules:
        module.optional = True  # no compiler: the .py files are used
    return modules


setup(ext_modules=extensions())
