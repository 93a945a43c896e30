"""Each private part of singer-sdk the target relies on is still there, shaped as expected.

When an SDK upgrade fails one of these, the message names the seam and why the target needs
it: read target_spotify_conversions/sdk_seams.py, then adapt the module it names.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from target_spotify_conversions import sdk_seams
from target_spotify_conversions.sdk_seams import SEAMS, Seam

PACKAGE = Path(sdk_seams.__file__).parent


def resolve(path: str) -> object:
    """A module, or a class in a module, from its dotted path."""
    module_path, _, attribute = path.rpartition(".")
    try:
        return importlib.import_module(path)
    except ImportError:
        return getattr(importlib.import_module(module_path), attribute)


def advice(seam: Seam) -> str:
    where = f"{seam.owner}.{seam.name}"
    return f"singer-sdk changed {where}, which {seam.used_in} relies on ({seam.why})"


@pytest.mark.parametrize("seam", SEAMS, ids=lambda seam: seam.name)
def test_each_seam_still_exists_with_the_parameters_the_target_uses(seam):
    owner = resolve(seam.owner)
    assert hasattr(owner, seam.name), advice(seam)
    parameters = tuple(inspect.signature(getattr(owner, seam.name)).parameters)
    assert parameters == seam.parameters, advice(seam)


@pytest.mark.parametrize("seam", [s for s in SEAMS if s.called_by], ids=lambda seam: seam.name)
def test_the_sdk_still_calls_each_seam_where_the_target_expects(seam):
    caller_path, _, method = seam.called_by.rpartition(".")
    source = inspect.getsource(getattr(resolve(caller_path), method))
    called = re.search(rf"\.{seam.name}\b", source)
    assert called, advice(seam) + f" (no longer called by {seam.called_by})"


def test_the_targets_own_signal_handlers_replace_the_sdks():
    """The SDK's handler would drain inside the signal, wherever the main thread is, and exit 0."""
    import signal

    from target_spotify_conversions.target import TargetSpotifyConversions
    from tests.harness import target_config

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        target = TargetSpotifyConversions(config=target_config("http://127.0.0.1:9/"))
        for sig in previous:
            assert signal.getsignal(sig) == target._stop_on_signal
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_every_private_sdk_name_the_package_uses_is_listed():
    """A new private hook must be added to SEAMS (with its reason), not slipped in silently."""
    listed = {seam.name for seam in SEAMS} | {"_ConfigInput"}
    used = set()
    for path in PACKAGE.glob("*.py"):
        if path.name == "sdk_seams.py":
            continue
        text = path.read_text()
        used |= set(re.findall(r"super\(\)\.(_(?!_)\w+)\(", text))  # private SDK methods extended
        used |= set(re.findall(r"from singer_sdk[\w.]* import .*?\b(_(?!_)\w+)", text))
        used |= set(re.findall(r"^\s+def (_(?!_)\w+)\(", text, re.M)) & _sdk_private_methods()
        if re.search(r"^class \w+\(\w*(Target|Sink|Reader|StreamMap)\)", text, re.M):
            named = re.findall(r"\bself\.(_(?!_)\w+)|getattr\(self, \"(_(?!_)\w+)\"", text)
            used |= {a or b for a, b in named} & _sdk_private_attributes()
        assert "singer_sdk.helpers._" not in text, f"{path.name}: import it from sdk_seams.py"
    assert used <= listed, f"private SDK names not in sdk_seams.SEAMS: {sorted(used - listed)}"


def _sdk_private_methods() -> set[str]:
    from singer_sdk.singerlib.encoding.base import GenericSingerReader
    from singer_sdk.sinks.core import Sink
    from singer_sdk.target_base import Target

    return {
        name
        for cls in (Target, Sink, GenericSingerReader)
        for name in dir(cls)
        if name.startswith("_") and not name.startswith("__")
    }


def _sdk_private_attributes() -> set[str]:
    """Private attributes the SDK's plugins, sinks and readers set on themselves: reading one
    (as `self._config`) is a seam too, and a name of the target's own that collides with one
    would silently replace the SDK's."""
    import singer_sdk

    root = Path(singer_sdk.__file__).parent
    found: set[str] = set()
    for path in [*root.glob("*.py"), *root.glob("sinks/*.py"), *root.glob("singerlib/**/*.py")]:
        found |= set(re.findall(r"\bself\.(_(?!_)\w+)\s*(?::[^=\n]+)?=[^=]", path.read_text()))
    return found | _sdk_private_methods()
