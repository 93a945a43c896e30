"""What crosses the pipes between the reading process and the mapping workers.

Both sides import it, and it imports nothing of either: the workers load no more than they need.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .problems import Problem

# Seconds a worker may stay silent while it owes a result (the mapping_worker_timeout_seconds
# setting's default); a chunk takes it milliseconds.
ANSWER_TIMEOUT = 20.0
# How a chunk of records is encoded: JSON, which is what a Singer record is, or pickle for a
# chunk holding a value JSON cannot carry (a stream map may make one); or, for RECORD lines
# handed on whole (reader.SafeReader._take_lines), msgpack pairs (stream, line): a line may not
# be JSON at all, so it cannot sit inside a JSON chunk, and each is decoded on its own.
JSON_CHUNK, PICKLED_CHUNK, LINES_CHUNK = b"J", b"P", b"L"


class MappedRecord(msgspec.Struct, array_like=True, gc=False):
    """What the worker says of one record: an encoded event, or the reasons it is rejected.

    Out of the collector's sight (gc=False: it holds no cycle), and tuples (an empty one is
    shared): the reading process decodes hundreds of thousands of them.
    """

    event_id: str
    body: bytes | None
    warnings: tuple[str, ...]
    reasons: tuple[Problem, ...]
    identifiers: int = 0  # mapping.IDENTIFIER_BITS of the event's user_data
    skipped: bool = False  # not sent and not kept: the record gives no consent
    # Why a raw record is an unreadable line (unreadable.py): NOT_JSON (a full decoding refuses
    # it: a huge number; a line handed on whole: not JSON at all), TOO_DEEP (nested deeper than
    # its reader allows) or AMBIGUOUS (a line handed on whole that names another type or
    # stream, or a record that is no object, after its start); "" when it is readable.
    unreadable: str = ""
    # A rejected raw record as the rejects file keeps it (EventMapper.redact, JSON): redacted
    # by the worker, where its phone number was just parsed (and cached), not by the reading
    # process.
    kept: bytes | None = None
    # The connection the record is routed to (routing.py); "" when it routes nowhere.
    connection: str = ""
    # The event's `event_time` as its body holds it: the delivery ledger records it, without
    # reading it back out of the body.
    event_time: str = ""


class StreamChecks(msgspec.Struct, array_like=True):
    """What a worker needs to check a stream's raw records as the SDK side would."""

    stream: str
    schema: dict[str, Any]
    key_properties: list[str]
    validate: bool
    datelike: list[tuple[str, str]] = []  # (property, format), by the SDK's rule
    metadata: list[str] = []  # the `_sdc_` keys the SDK's path removes from each record
