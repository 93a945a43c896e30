"""The SDK side of a stream: hand-off of each record to the pipeline, with its problems.

Batching is the pipeline's (requests of `events_per_request`), not the SDK's; validation is
validation.RecordChecks', which turns every problem into a rejection reason.
"""

from __future__ import annotations

import typing as t

from singer_sdk import Target
from singer_sdk.mapper import SameRecordTransform, StreamMap
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from .sdk_seams import datetime_properties
from .validation import RecordChecks
from .wire import StreamChecks

if t.TYPE_CHECKING:
    from .pipeline import Pipeline


class RunsAPipeline(t.Protocol):
    """The target as a sink sees it: the run's pipeline, which takes every record."""

    @property
    def pipeline(self) -> Pipeline: ...


class SpotifyConversionsSink(BatchSink):
    """Feeds each record of one stream to the run's pipeline."""

    # Records between two full drains (each waits for every request in flight). STATE does not
    # depend on it: the pipeline writes each STATE as soon as the records before it are done.
    MAX_SIZE_DEFAULT = 100_000

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, t.Any],
        key_properties: t.Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self._pipeline = t.cast("RunsAPipeline", target).pipeline
        self._datelike = datetime_properties(self.schema)
        self._checks = RecordChecks(
            self.schema,
            self.key_properties or (),
            validate=self.validate_schema,
            datelike=self._datelike,
            check_json=True,  # a stream map may make any Python value
        )

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """None: the SDK's validator would crash the run or quote values (RecordChecks does not)."""
        return None

    def _validate_and_parse(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """Leave the record as read: date-time strings stay strings, so the event id derived
        from a record is the same with or without validation (see sdk_seams.py)."""
        return record

    def _singer_validate_message(self, record: dict[str, t.Any]) -> None:
        """Missing key properties are a rejection reason, not a crash (see sdk_seams.py)."""

    def process_record(self, record: dict[str, t.Any], context: dict[str, t.Any]) -> None:
        self._pipeline.process(record, self.stream_name, self._checks.problems(record))

    def raw_checks(self, stream_maps: t.Sequence[StreamMap]) -> StreamChecks | None:
        """What the workers need to take this stream's records raw, if they may: when the
        SDK's per-record steps would hand them on unchanged (one identity map, no flattening,
        no metadata), skipping those steps changes nothing but the time they take."""
        same = (
            len(stream_maps) == 1
            and type(stream_maps[0]) is SameRecordTransform
            and stream_maps[0].stream_alias == self.stream_name
            and not stream_maps[0].flattening_enabled
            and not self.include_sdc_metadata_properties
        )
        if not same:
            return None
        metadata = self._metadata_keys()
        if not metadata:  # the SDK removes its metadata some other way now: keep its path
            return None
        keys = list(self.key_properties or ())
        datelike = list(self._datelike)
        return StreamChecks(
            self.stream_name, self.schema, keys, self.validate_schema, datelike, metadata
        )

    def _metadata_keys(self) -> list[str]:
        """The `_sdc_` keys the SDK's per-record path removes from a record (see sdk_seams.py),
        as its own method names them: the workers remove the same from raw records."""
        probe = _KeysPopped()
        self._remove_sdc_metadata_from_record(probe)
        return probe.popped

    def process_batch(self, context: dict[str, t.Any]) -> None:
        """An SDK drain: every request sent and answered, so the SDK may write its STATE."""
        self._pipeline.drain()


class _KeysPopped(dict[str, t.Any]):
    """An empty record that notes which keys are popped from it."""

    def __init__(self) -> None:
        super().__init__()
        self.popped: list[str] = []

    def pop(self, key: str, *default: t.Any) -> t.Any:
        self.popped.append(key)
        return super().pop(key, *default)
