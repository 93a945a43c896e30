"""Singer target for the Spotify Conversions API.

An installed build may hold compiled modules (setup.py): they are the build. In a source
checkout, an extension module beside the sources is a leftover of a build made in place: it
would load instead of its edited `.py` file and run old code, so the package refuses to import
while one is there.
"""

from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES
from pathlib import Path as _Path

_HERE = _Path(__file__).parent
_EXTENSIONS = sorted(
    path.name for path in _HERE.iterdir() if path.name.endswith(tuple(_EXTENSION_SUFFIXES))
)
if _EXTENSIONS and (_HERE.parent / "pyproject.toml").is_file():  # a checkout's sources
    raise ImportError(
        "compiled modules left over from an earlier build would run instead of the source: "
        f"{', '.join(_EXTENSIONS)} in {_HERE}; remove them (`make clean`)"
    )
# The modules that run compiled (mypyc's shared library, `_compiled__mypyc`, is not one).
COMPILED_MODULES = tuple(name.partition(".")[0] for name in _EXTENSIONS if name[0] != "_")
# The environment variable that makes an install pure Python on purpose (setup.py, which
# cannot import the package it builds, spells it again; tests/test_install.py checks both).
PURE_PYTHON_SWITCH = "TARGET_SPOTIFY_CONVERSIONS_PURE_PYTHON"
