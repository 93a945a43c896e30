"""The mapping, run in a child process, so that it and the SDK's per-record work use two cores.

One Python thread cannot read, validate and map more than about 15,000 records a second; the
mapping is the larger half and needs nothing from the SDK, so chunks of records go to a worker
process and come back as encoded events or rejection reasons, in order.

Both ways the chunk crosses as one msgspec-encoded `bytes`, not as pickled objects: pickling
500 records and their results cost about 17 us a record, more than mapping them. Records go as
JSON, which is what a Singer record is (decimals keep their digits; a datetime that a stream map
made arrives as its RFC 3339 string, and a float NaN, which no Singer line can carry, as null).
A chunk holding a value JSON cannot carry at all is pickled instead.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import msgspec

from .event_time import UTC
from .mapping import EventMapper, Mapped, MappingOptions, Problem

Chunk = Sequence[tuple[str, Mapping[str, Any]]]

_EVENT_ENCODER = msgspec.json.Encoder(decimal_format="number")
_CHUNK_ENCODER = msgspec.json.Encoder(decimal_format="number")
_CHUNK_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)
_MAPPER: EventMapper | None = None


class MappedRecord(msgspec.Struct, array_like=True):
    """What the worker says of one record: an encoded event, or the reasons it is rejected."""

    event_id: str
    body: bytes | None
    warnings: list[str]
    reasons: list[Problem]


_RESULT_ENCODER = msgspec.msgpack.Encoder()
_RESULT_DECODER = msgspec.msgpack.Decoder(list[MappedRecord])


class MappingProcess:
    """A one-worker process pool holding an EventMapper (and its caches) for the whole run."""

    def __init__(self, options: MappingOptions) -> None:
        # fork, not spawn: the child starts in milliseconds with the modules already imported.
        # The pipeline builds this first, before this process has started any thread.
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(options, os.getpid()),
        )
        self._pool.submit(int).result()  # fork now, while this process has a single thread

    def submit(self, chunk: Chunk) -> Future[bytes]:
        """Map (stream, record) pairs in the worker; `results` reads what the future holds."""
        try:
            payload: bytes | Chunk = _CHUNK_ENCODER.encode(chunk)
        except TypeError:  # a value JSON cannot carry (a stream map may make one)
            payload = chunk
        return self._pool.submit(_map_chunk, payload)

    @staticmethod
    def results(done: Future[bytes]) -> list[MappedRecord]:
        """The mapped records of a finished chunk, in the order they were submitted."""
        return _RESULT_DECODER.decode(done.result())

    def close(self, *, abandon: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=abandon)


def _start_worker(options: MappingOptions, parent: int) -> None:
    # Signals are the parent's to handle: it drains, writes STATE, then closes this pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _MAPPER
    _MAPPER = EventMapper(options)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    # What the fork inherited lives as long as the worker: keep the collector off it.
    gc.freeze()


def _exit_with_parent(parent: int) -> None:
    """A parent killed with SIGKILL cannot stop its pool: the worker notices and leaves."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _map_chunk(payload: bytes | Chunk) -> bytes:
    assert _MAPPER is not None
    chunk = _CHUNK_DECODER.decode(payload) if isinstance(payload, bytes) else payload
    now = dt.datetime.now(UTC)  # one clock reading a chunk: its records arrived together
    out = []
    for stream, record in chunk:
        result = _MAPPER.map(record, stream, now)
        if isinstance(result, Mapped):
            body = _EVENT_ENCODER.encode(result.event)
            out.append(MappedRecord(result.event_id, body, result.warnings, []))
        else:
            out.append(MappedRecord(result.event_id, None, result.warnings, result.reasons))
    return _RESULT_ENCODER.encode(out)
