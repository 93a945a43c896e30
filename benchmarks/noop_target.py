#!/usr/bin/env python3
"""The framework's floor: a singer-sdk target that does nothing with its records.

Everything is the SDK's default: its message reader (json with Decimal numbers), its record
validation (jsonschema, `validate_records` on), its date-time parsing, its batch size (10,000
rows per `process_batch`), its STATE handling. `process_batch` then throws the batch away.
Whatever this costs per record, any singer-sdk target pays too, before doing any work.

    python benchmarks/noop_target.py --config config.json < stream.jsonl

Any config is accepted (the benchmark passes the real target's config unchanged).
"""

from __future__ import annotations

import typing as t

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink


class NoopSink(BatchSink):
    """Keeps the SDK's batching and drops each batch."""

    def process_batch(self, context: dict[str, t.Any]) -> None:
        """Nothing: the records were read, validated and parsed; that is the floor."""


class TargetNoop(Target):
    """A do-nothing target with the SDK's defaults."""

    name = "target-noop"
    # No declared settings; unknown keys (api_url, auth_token, ...) are allowed.
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NoopSink


if __name__ == "__main__":
    TargetNoop.cli()
