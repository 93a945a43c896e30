"""setup.py: which modules a build compiles with mypyc, and the switch that turns it off."""

from __future__ import annotations

import re

from target_spotify_conversions import PURE_PYTHON_SWITCH
from tests.checkout import REPO, compiled_by_setup

PACKAGE = REPO / "target_spotify_conversions"


def test_every_compiled_module_exists_and_defines_no_struct():
    compiled = compiled_by_setup()
    assert len(compiled) == len(set(compiled)) > 0
    for name in compiled:
        source = (PACKAGE / f"{name}.py").read_text(encoding="utf-8")
        # A msgspec Struct defined in a compiled module loses its class options.
        assert not re.search(r"^class \w+\([^)]*Struct", source, re.MULTILINE), name


def test_the_modules_a_mapping_worker_runs_for_each_record_are_compiled():
    compiled = set(compiled_by_setup())
    for name in ("chunk_codec", "mapping", "hashing", "privacy", "values", "event_time"):
        assert name in compiled


def test_setup_and_the_package_name_the_same_pure_python_switch():
    text = (REPO / "setup.py").read_text(encoding="utf-8")
    assert f'PURE_PYTHON_SWITCH = "{PURE_PYTHON_SWITCH}"' in text
