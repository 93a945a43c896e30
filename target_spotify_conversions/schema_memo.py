"""Work done once per distinct schema, not once per stream.

A run may carry thousands of streams that share one schema (a tap per tenant, per shard, per
day). Checking a schema against its meta-schema and compiling its validator cost about 30 ms
and 100 kB each: 20,000 such streams took minutes and hundreds of megabytes. Results are kept
by the schema's canonical JSON (keys sorted, numbers as written), so every stream with the
same schema shares one, and at most MAX_SCHEMAS are kept: memory stays bounded however many
distinct schemas come.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

# Distinct schemas whose results are kept; a run with more recomputes the oldest.
MAX_SCHEMAS = 256

_KEY = msgspec.json.Encoder(decimal_format="number", order="sorted")
T = TypeVar("T")


class SchemaMemo(Generic[T]):
    """`build(schema)`, computed once for each distinct schema (results must not be mutated:
    streams share them)."""

    def __init__(self, build: Callable[[dict[str, Any]], T], size: int = MAX_SCHEMAS) -> None:
        self._build = build
        self._size = size
        self._kept: dict[bytes, T] = {}

    def __call__(self, schema: dict[str, Any]) -> T:
        try:
            key = _KEY.encode(schema)
        except (TypeError, ValueError):  # not JSON (a schema built in code): not shared
            return self._build(schema)
        if key in self._kept:
            return self._kept[key]
        result = self._build(schema)
        if len(self._kept) >= self._size:
            del self._kept[next(iter(self._kept))]  # the oldest
        self._kept[key] = result
        return result
