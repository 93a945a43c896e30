"""Compiles the modules a mapping worker runs for every record with mypyc, where it can.

The mapping worker spends most of a run's CPU (about three quarters of it against an instant
API) in plain Python: decoding, checking and mapping each record. mypyc turns those modules
into C extension modules that load in place of the `.py` files: the same code and results,
about a quarter fewer instructions a record in the worker and a fifth less CPU a run
(docs/architecture.md, "Compiled where it pays"; benchmarks/README.md).

What is built, and why:

- `pip install <source>`, a wheel or an sdist: compiled, where a C compiler is found. The
  packages the compiled modules import are build requirements (pyproject.toml), so mypy's
  type checks see them inside pip's isolated build.
- An editable install (`pip install -e`, `make install`, Meltano's `pip_url: -e .`): never
  compiled, so an edited module runs in the next run, as its source says.
- No C compiler, or mypyc refusing the code: pure Python, with a warning in the build's
  output; the target's start-up log line says which build runs.
- TARGET_SPOTIFY_CONVERSIONS_PURE_PYTHON=1 in the environment: pure Python on purpose.

Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings

from setuptools import setup

PACKAGE = "target_spotify_conversions"
# What a mapping worker imports and runs for each record. Not here: modules that define
# msgspec Structs (a compiled module's Struct loses its class options), and the reading
# process's modules, which import the SDK and the HTTP stack (compiling them measured no
# saving: the reading process spends its time in C already).
COMPILED = (
    "chunk_codec",
    "escaping",
    "event_id",
    "event_names",
    "event_time",
    "hashing",
    "input_formats",
    "mapping",
    "privacy",
    "problems",
    "routing",
    "schema_memo",
    "taxonomy",
    "unreadable",
    "values",
)
PURE_PYTHON_SWITCH = "TARGET_SPOTIFY_CONVERSIONS_PURE_PYTHON"


# The setuptools commands that build extension modules. Not among them: `editable_wheel` (an
# editable install), and the steps that only read metadata (`egg_info`, `dist_info`, `sdist`),
# which would otherwise run mypy's checks for nothing.
BUILDING = frozenset({"bdist_wheel", "build", "build_ext", "install"})


def extensions(build_base: str) -> list:  # type: ignore[type-arg]
    try:
        from mypyc.build import mypycify

        modules = mypycify(
            [f"{PACKAGE}/{name}.py" for name in COMPILED],
            opt_level="3",
            group_name=f"{PACKAGE}._compiled",  # the shared library lives inside the package
            target_dir=build_base,
        )
    except (Exception, SystemExit) as exc:  # mypyc refuses the code: install it uncompiled
        warnings.warn(f"mypyc cannot compile the modules ({exc!r}): pure Python", stacklevel=1)
        return []
    for module in modules:
        module.optional = True  # no C compiler: setuptools warns, and the .py files are used
    return modules


def fresh_build_base() -> str:
    """A new directory for the build's files, removed when the build ends. pip builds a
    checkout in place, and setuptools packs whatever its build directory holds: a `build/`
    left by an earlier install that compiled other modules (as releases before this one did)
    would put their old extension modules into the wheel, to run instead of the sources."""
    base = tempfile.mkdtemp(prefix="target-spotify-conversions-build-")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    return base


if BUILDING.isdisjoint(sys.argv):
    setup()
else:
    BUILD_BASE = fresh_build_base()
    PURE = os.environ.get(PURE_PYTHON_SWITCH, "") not in ("", "0")
    setup(
        ext_modules=[] if PURE else extensions(BUILD_BASE),
        options={"build": {"build_base": BUILD_BASE}},
    )
