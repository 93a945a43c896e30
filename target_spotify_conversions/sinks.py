"""The SDK side of a stream: validation that rejects instead of crashing, and hand-off to the
pipeline. Batching is the pipeline's (requests of `events_per_request`), not the SDK's."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from .mapping import Problem
from .validation import datetime_properties, unreadable_datetimes, validator_for

if t.TYPE_CHECKING:
    from .target import TargetSpotifyConversions


class SpotifyConversionsSink(BatchSink):
    """Feeds each record of one stream to the run's pipeline."""

    # Records between two full drains (each waits for every request in flight). STATE does not
    # depend on it: the pipeline writes each STATE as soon as the records before it are done.
    MAX_SIZE_DEFAULT = 100_000

    def __init__(
        self,
        target: TargetSpotifyConversions,
        stream_name: str,
        schema: dict[str, t.Any],
        key_properties: t.Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self._pipeline = target.pipeline
        self._datelike = datetime_properties(self.schema)
        self._problems: list[Problem] = []

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        return validator_for(self.schema) if self.validate_schema else None

    def _validate_and_parse(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """Collect schema and date-time problems as rejection reasons (see validation.py).

        Date-time strings are checked, not converted: the mapping reads strings, and the
        event id derived from a record stays the same with or without validation.
        """
        self._problems = []
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                self._problems.append(Problem("schema_validation", str(exc)))
        if self._datelike:
            self._problems += unreadable_datetimes(record, self._datelike)
        return record

    def _singer_validate_message(self, record: dict[str, t.Any]) -> None:
        """A record without its key properties is rejected, not a crash of the run."""
        missing = [key for key in self.key_properties if key not in record]
        if missing:
            self._problems.append(
                Problem("missing_key_properties", "missing " + ", ".join(missing))
            )

    def process_record(self, record: dict[str, t.Any], context: dict[str, t.Any]) -> None:
        self._pipeline.process(record, self.stream_name, self._problems)

    def process_batch(self, context: dict[str, t.Any]) -> None:
        """An SDK drain: every request sent and answered, so the SDK may write its STATE."""
        self._pipeline.drain()
