"""The install compiles the per-record modules with mypyc where it can (setup.py), and falls
back to pure Python where it cannot: the same package either way, only slower."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from target_spotify_conversions.mapping_process import mapping_build
from tests.harness import REPO

PURE_SWITCH = "TARGET_SPOTIFY_CONVERSIONS_PURE_PYTHON"


def test_the_installed_mapping_is_compiled_unless_turned_off():
    """CI builds with a C compiler (and its fast tier turns compiling off): a build that fell
    back to pure Python without anyone asking would lose a quarter of the speed silently."""
    turned_off = os.environ.get(PURE_SWITCH, "") not in ("", "0")
    has_compiler = shutil.which(os.environ.get("CC", "cc")) is not None
    expected = "pure Python" if turned_off or not has_compiler else "compiled with mypyc"
    assert mapping_build().startswith(expected)


def test_without_a_c_compiler_the_build_installs_pure_python(tmp_path):
    work = tmp_path / "src"
    shutil.copytree(
        REPO / "target_spotify_conversions",
        work / "target_spotify_conversions",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, work)
    env = {**os.environ, "CC": "/bin/false"}
    env.pop(PURE_SWITCH, None)
    build = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert 'building extension "target_spotify_conversions.mapping" failed' in build.stderr
    assert not list((work / "target_spotify_conversions").glob("*.so"))
    # The tree still runs, as pure Python: a record is mapped.
    code = (
        "import target_spotify_conversions.mapping_process as m, "
        "target_spotify_conversions.mapping as mp; "
        "print(m.__file__); print(m.mapping_build()); "
        "r = mp.EventMapper(mp.MappingOptions()).map("
        "{'spotify_event_name': 'LEAD', '$event_id': 'x', 'email': 'a@b.co'}, 's'); "
        "print(type(r).__name__)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    where, build_kind, result = run.stdout.splitlines()
    assert where.startswith(str(work))
    assert build_kind.startswith("pure Python")
    assert result == "Mapped"
