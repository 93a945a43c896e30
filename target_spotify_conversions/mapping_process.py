"""The mapping, run in a child process, so that it and the SDK's per-record work use two cores.

One Python thread cannot read, validate and map more than about 15,000 records a second; the
mapping is the larger half and needs nothing from the SDK, so chunks of records go to a worker
process and come back as encoded events or rejection reasons, in order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, NamedTuple

import msgspec

from .mapping import EventMapper, Mapped, MappingOptions, Problem

_ENCODER = msgspec.json.Encoder(decimal_format="number")
_MAPPER: EventMapper | None = None


class MappedRecord(NamedTuple):
    """What the worker says of one record: an encoded event, or the reasons it is rejected."""

    event_id: str
    body: bytes | None
    warnings: list[str]
    reasons: list[Problem]


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

    def submit(self, chunk: Sequence[tuple[str, Mapping[str, Any]]]) -> Future[list[MappedRecord]]:
        """Map (stream, record) pairs in the worker; the future's list follows their order."""
        return self._pool.submit(_map_chunk, chunk)

    def close(self, *, abandon: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=abandon)


def _start_worker(options: MappingOptions, parent: int) -> None:
    # Signals are the parent's to handle: it drains, writes STATE, then closes this pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _MAPPER
    _MAPPER = EventMapper(options)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A parent killed with SIGKILL cannot stop its pool: the worker notices and leaves."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _map_chunk(chunk: Sequence[tuple[str, Mapping[str, Any]]]) -> list[MappedRecord]:
    assert _MAPPER is not None
    out = []
    for stream, record in chunk:
        result = _MAPPER.map(record, stream)
        if isinstance(result, Mapped):
            body = _ENCODER.encode(result.event)
            out.append(MappedRecord(result.event_id, body, result.warnings, []))
        else:
            out.append(MappedRecord(result.event_id, None, result.warnings, result.reasons))
    return out
