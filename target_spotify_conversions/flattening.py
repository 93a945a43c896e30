"""Identifiers that the SDK's record flattening moved: a hint at the end of the run.

With `flattening_enabled`, the SDK turns `properties.email` into `properties__email` before the
target sees the record. The input formats read such names where they are unambiguous
(input_formats.flattened_names), but a nested path of the tap's own (`customer.email` ->
`customer__email`) is read by none, and the identifier is then lost without a word: coverage
falls and nothing says why. So the run notes, per identifier, the flattened names it was seen
under and whether it was ever seen under its own name, and says so in the summary's hints.

Pure Python, no SDK: the pipeline shows it each record of a flattened stream.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .input_formats import flattened_names, split_path
from .values import is_absent

# The identifiers' properties (the Freshpaint names), and the last key of a path that holds
# one in the formats' nested shapes (Segment's context.ip, context.device.advertisingId).
IDENTIFIER_KEYS: Mapping[str, str] = {
    "email": "email",
    "phone": "phone",
    "$ip": "$ip",
    "ip": "$ip",
    "$device_id": "$device_id",
    "advertisingId": "$device_id",
}
_OWN_NAMES = frozenset(IDENTIFIER_KEYS.values())
# Flattened names listed in one hint; the rest are counted.
NAMES_SHOWN = 3


def names_read(
    input_format: str,
    property_paths: Mapping[str, Sequence[str]],
    properties: Sequence[str],
    separator: str,
) -> dict[str, str]:
    """Every flattened name the run reads, with its property: the format's, and those of
    `property_paths` (written flattened, or nested and so read flattened too)."""
    names = flattened_names(input_format, properties, separator)
    for name, paths in property_paths.items():
        for path in paths:
            names.setdefault(separator.join(split_path(path)), name)
    return names


class FlattenedIdentifiers:
    """Where a flattened run found its identifiers: under their own names, or only flattened."""

    def __init__(self, separator: str, read: Mapping[str, str]) -> None:
        """`read`: the flattened names the input format reads, each with its property."""
        self._separator = separator
        self._read = read
        self._plain: set[str] = set()
        self._flattened: dict[str, Counter[str]] = {}

    def observe(self, record: Mapping[str, Any]) -> None:
        """Note one record's identifier keys (a scan of its keys: flattened records only)."""
        separator = self._separator
        for key, value in record.items():
            if is_absent(value):
                continue
            if key in _OWN_NAMES:
                self._plain.add(key)
            elif separator in key:
                name = IDENTIFIER_KEYS.get(key.rpartition(separator)[2])
                if name is not None:
                    self._flattened.setdefault(name, Counter())[key] += 1

    def hints(self) -> list[str]:
        """One hint per identifier seen only under flattened names."""
        hints = []
        for name, keys in sorted(self._flattened.items()):
            if name in self._plain:
                continue
            unread = [key for key in sorted(keys) if self._read.get(key) != name]
            shown = ", ".join(
                f"{json.dumps(key)} in {keys[key]} record{'' if keys[key] == 1 else 's'}"
                for key in sorted(keys)[:NAMES_SHOWN]
            )
            if unread:
                path = json.dumps(unread[0].replace(self._separator, "."))
                hints.append(
                    f"{name} was found only under flattened names ({shown}), and "
                    f"{json.dumps(unread[0])} is read by no input format, so it was not sent: "
                    f'add its path to property_paths ({{"{name}": [{path}]}}), which reads '
                    "it flattened or not"
                )
            else:
                hints.append(
                    f"{name} was found only under flattened names ({shown}), from which it "
                    "was read; flattening_enabled is not needed by this target (it reads "
                    "nested records itself)"
                )
        return hints
