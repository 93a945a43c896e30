"""Which streams take the lean path: only those whose records the SDK would hand on unchanged."""

from __future__ import annotations

import json

import pytest

from target_spotify_conversions.reader import SafeReader
from target_spotify_conversions.target import TargetSpotifyConversions
from tests.harness import SCHEMA


def raw_streams_after_schema(tmp_path, **settings) -> set[str]:
    """Run the target in-process on an input of one SCHEMA; the streams its reader takes raw."""
    config = {"dry_run": True, "mapping_processes": 0, "rejects_file": str(tmp_path / "r.jsonl"),
              "dry_run_file": str(tmp_path / "d.jsonl"), **settings}
    target = TargetSpotifyConversions(config=config)
    source = tmp_path / "input.jsonl"
    source.write_text(json.dumps({"type": "SCHEMA", "stream": "orders", "schema": SCHEMA,
                                  "key_properties": ["$event_id"]}) + "\n")
    with source.open("rb") as lines:
        target.listen(lines)  # type: ignore[arg-type]
    reader = target.message_reader
    assert isinstance(reader, SafeReader)
    return reader.raw_streams


def test_a_stream_without_maps_flattening_or_metadata_takes_the_lean_path(tmp_path):
    assert raw_streams_after_schema(tmp_path) == {"orders"}


@pytest.mark.parametrize(
    "settings",
    [
        {"stream_maps": {"orders": {}}},  # an identity map is still a custom map
        {"stream_maps": {"orders": {"note": "'x'"}}},
        {"flattening_enabled": True, "flattening_max_depth": 1},
        {"add_record_metadata": True},
    ],
    ids=["identity map", "map", "flattening", "metadata"],
)
def test_a_stream_the_sdk_changes_keeps_the_sdk_path(tmp_path, settings):
    assert raw_streams_after_schema(tmp_path, **settings) == set()
