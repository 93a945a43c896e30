"""Singer target for the Spotify Conversions API.

The package is pure Python. Earlier versions could compile some modules in place; such a
leftover extension module would load instead of its edited `.py` file and run old code, so the
package refuses to import while one is there.
"""

from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES
from pathlib import Path as _Path

_leftovers = sorted(
    path.name
    for path in _Path(__file__).parent.iterdir()
    if path.name.endswith(tuple(_EXTENSION_SUFFIXES))
)
if _leftovers:
    raise ImportError(
        "compiled modules left over from an earlier build would run instead of the source: "
        f"{', '.join(_leftovers)} in {_Path(__file__).parent}; remove them (`make clean`)"
    )
