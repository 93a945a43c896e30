"""Every private part of singer-sdk the target relies on, in one list, with the reason for each.

singer-sdk offers no public hook for these (checked against 0.54). They are gathered here so an
SDK upgrade has one place to look: tests/test_sdk_seams.py checks that each still exists, with
the parameters and the call sites the target expects, and fails naming the seam and its reason.
The two private imports the target needs are re-exported from here and imported nowhere else.

Public hooks serve where the SDK has them: the target extends the public `invoke` (its error
handling wraps the SDK's own flow; `listen` and `process_lines` of the plugin are final), and
installs its signal handlers with `signal` after the SDK's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from singer_sdk.helpers._typing import get_datelike_property_type
from singer_sdk.plugin_base import _ConfigInput

from .validation import DATE_KINDS

__all__ = ["SEAMS", "ConfigInput", "Seam", "datetime_properties", "get_datelike_property_type"]

ConfigInput = _ConfigInput  # the type of `config` in invoke(), which the target extends


def datetime_properties(schema: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(property, format) of the top-level properties the SDK would parse: found once per stream
    by the SDK's own rule (a string with format date-time, date or time), for RecordChecks."""
    found = []
    for name, spec in (schema.get("properties") or {}).items():
        kind = get_datelike_property_type(spec) if isinstance(spec, dict) else None
        if kind in DATE_KINDS:
            found.append((name, kind))
    return tuple(found)


@dataclass(frozen=True)
class Seam:
    """One private method (or function) of the SDK, and what the target does with it."""

    owner: str  # dotted path of the module or class that holds it
    name: str
    parameters: tuple[str, ...]  # as inspect.signature lists them
    used_in: str
    why: str
    called_by: str = ""  # a method of the SDK whose source must still call `name`


SEAMS: tuple[Seam, ...] = (
    Seam(
        "singer_sdk.target_base.Target",
        "_process_schema_message",
        ("self", "message_dict"),
        "target.py",
        "check a SCHEMA before the SDK chokes on it, and guard the stream maps it "
        "registers so a failing expression rejects one record instead of ending the run",
    ),
    Seam(
        "singer_sdk.target_base.Target",
        "_process_state_message",
        ("self", "message_dict"),
        "target.py",
        "hand each STATE to the pipeline, which writes it once the records before "
        "it are delivered (the SDK writes STATE only after a full drain)",
    ),
    Seam(
        "singer_sdk.target_base.Target",
        "_process_batch_message",
        ("self", "message_dict"),
        "target.py",
        "send each line of a BATCH file down the RECORD path (stream maps, "
        "validation, rejects); the SDK's own handling skips both and reads whole files",
    ),
    Seam(
        "singer_sdk.target_base.Target",
        "_process_record_message",
        ("self", "message_dict"),
        "target.py",
        "called (not overridden) for each line of a BATCH file",
        called_by="singer_sdk.target_base.Target.process_lines",
    ),
    Seam(
        "singer_sdk.target_base.Target",
        "_write_state_message",
        ("self", "state"),
        "target.py",
        "made a drain only: the pipeline is the one writer of STATE (it writes each STATE "
        "once the records before it are finished); the SDK would write its own after a drain",
    ),
    Seam(
        "singer_sdk.sinks.core.Sink",
        "_validate_and_parse",
        ("self", "record"),
        "sinks.py",
        "made a no-op: validation.RecordChecks turns problems into rejection "
        "reasons, and date-time strings stay strings so event ids do not depend on validation",
        called_by="singer_sdk.target_base.Target._process_record_message",
    ),
    Seam(
        "singer_sdk.sinks.core.Sink",
        "_singer_validate_message",
        ("self", "record"),
        "sinks.py",
        "made a no-op: a record missing its key properties is rejected by "
        "validation.RecordChecks, not a crash of the run",
        called_by="singer_sdk.target_base.Target._process_record_message",
    ),
    Seam(
        "singer_sdk.sinks.core.Sink",
        "_remove_sdc_metadata_from_record",
        ("self", "record"),
        "sinks.py",
        "the one change the SDK's per-record path makes to a record of a stream with an "
        "identity map, no flattening and no metadata: the sink asks it which keys it removes "
        "(a probe record notes them) and the workers remove the same from raw records",
        called_by="singer_sdk.target_base.Target._process_record_message",
    ),
    Seam(
        "singer_sdk.helpers._typing",
        "get_datelike_property_type",
        ("property_schema",),
        "validation.py",
        "the SDK's own rule for which properties it treats as dates, so the "
        "target checks exactly those",
    ),
    Seam(
        "singer_sdk.singerlib.encoding.base.GenericSingerReader",
        "process_lines",
        ("self", "file_input", "callbacks"),
        "reader.py",
        "replaced by a copy of its loop that also reads unreadable lines into "
        "rejects, ticks while the tap is quiet, starts the run, and stops on a signal",
        called_by="singer_sdk.plugin_base.BaseSingerReader.process_lines",
    ),
    Seam(
        "singer_sdk.mapper.CustomStreamMap",
        "_eval",
        ("self", "expr", "expr_parsed", "record", "property_name"),
        "stream_maps.py",
        "wrapped (and called with these keywords) to know which map property failed on a record",
    ),
)
