"""Where request bodies go: the contract every transport keeps, the body format, the dry-run file.

Delivery packs events and hands bodies to a `Transport`; it does not know whether they go to
the Conversions API (client.py) or to the dry-run file (here).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .report import RequestCounts

# Spotify takes at most this many bytes a request.
MAX_BODY_BYTES = 1_000_000


class DeliveryError(Exception):
    """The run cannot go on: the message says what happened and what to check."""


@dataclass(frozen=True)
class Answer:
    """A final (non-retried) answer: 2xx, or 400/413, which delivery splits and resends."""

    status: int
    message: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Transport(Protocol):
    """Something that takes request bodies from any number of threads.

    It counts what it does (requests, retries, latency, requests in flight) into the
    `RequestCounts` it was given: report.py owns every count.
    """

    counts: RequestCounts

    def post(self, body: bytes, event_count: int) -> Answer:
        """Send one body of `event_count` events; transient failures are the transport's."""
        ...

    def abort(self) -> None:
        """A stop was requested: no more retries, no more waiting."""
        ...

    def cut_in_flight(self) -> None:
        """The run is failing: end requests in flight at once."""
        ...

    def close(self) -> None:
        """The run is over: release connections and files."""
        ...


class DryRunFile:
    """Writes each request body as one line instead of sending it."""

    def __init__(self, path: str, counts: RequestCounts | None = None) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()
        self.counts = counts or RequestCounts()

    def post(self, body: bytes, event_count: int) -> Answer:
        with self._lock:
            self._file.write(body + b"\n")
        self.counts.sent()
        return Answer(200, "dry run")

    def abort(self) -> None:
        """Nothing waits in a dry run."""

    def cut_in_flight(self) -> None:
        """Nothing is in flight in a dry run."""

    def close(self) -> None:
        self._file.close()


def body_of(connection_id: str, events: Sequence[bytes]) -> bytes:
    """The request body around already-encoded events: encoding each event once is cheaper."""
    return b"".join(
        (
            b'{"conversion_events":{"capi_connection_id":"',
            connection_id.encode("ascii"),
            b'","events":[',
            b",".join(events),
            b"]}}",
        )
    )


def envelope_size(connection_id: str) -> int:
    """Bytes a body takes besides its events and the commas between them."""
    return len(body_of(connection_id, []))
