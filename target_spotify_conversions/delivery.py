"""Batching events into requests and keeping up to N of them in flight while records keep coming.

Requests run on a thread pool; everything else (rejects, counts) happens on the caller's
thread when results are collected, so none of it needs locks. Which STATE may be written is the
pipeline's to decide; delivery says which of its records is the oldest not yet finished.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from .concurrency import START, ConcurrencyLimit
from .problems import Problem
from .transport import (
    MAX_BODY_BYTES,
    Answer,
    DeliveryError,
    Transport,
    body_of,
    envelope_size,
)

# Bytes of raw records (kept for a rejection) that wait in one request, and in all requests
# queued and in flight: a request goes out at REQUEST_HELD_BYTES, and beyond HELD_BYTES adding
# waits for answers. Records of 116 kB reached 616 MB at 500 events a request; a decoded record
# (the SDK path) counts by number only.
REQUEST_HELD_BYTES = 8 << 20
HELD_BYTES = 64 << 20
if TYPE_CHECKING:  # the ledger brings SQLAlchemy: imported only by a run that has one
    from .ledger import Claim, Ledger


class Pending(msgspec.Struct, gc=False):
    """One mapped event waiting for delivery, with what a rejection would need.

    One per event, out of the collector's sight (gc=False: it holds no cycle).
    """

    stream: str
    event_id: str
    body: bytes
    # raw, or its whole RECORD line (bytes): decoded only if the API refuses it
    record: Mapping[str, Any] | msgspec.Raw | bytes
    identifiers: int = 0  # which identifiers the event carries, as mapping.IDENTIFIER_BITS
    event_time: str = ""  # as in the body: what the ledger records


# An event's record kept undecoded: raw, or its whole RECORD line (measured in bytes held).
_KEPT_BYTES = (msgspec.Raw, bytes)


@dataclass
class Outcome:
    """What became of one request: how many events arrived, which were refused and why."""

    delivered: int
    refused: list[tuple[Pending, Problem]]
    identifier_masks: Counter[int] = field(default_factory=Counter)
    already_delivered: int = 0  # left out: the ledger holds them as delivered


class Delivery:
    """Packs events into requests, sends them concurrently, reports outcomes in order of arrival."""

    def __init__(
        self,
        transport: Transport,
        connection_id: str,
        *,
        events_per_request: int,
        max_concurrent_requests: int,
        on_outcome: Callable[[Outcome], None],
        limit: ConcurrencyLimit | None = None,
        ledger: Ledger | None = None,
        on_abandoned: Callable[[Outcome], None] | None = None,
    ) -> None:
        """`on_abandoned`: told of each request the API acknowledged that a failing run had no
        time to collect (another request failed first), so the summary counts what the ledger
        holds; nothing is checkpointed for it."""
        self.transport = transport
        self._connection_id = connection_id
        self._per_request = events_per_request
        self._envelope = envelope_size(connection_id)
        self._on_outcome = on_outcome
        self._pool = cf.ThreadPoolExecutor(max_concurrent_requests, thread_name_prefix="capi")
        # The transport's limit on requests in flight (it may follow the API's answers).
        self._limit = limit or ConcurrencyLimit(max_concurrent_requests, adaptive=False)
        self._in_flight: dict[cf.Future[Outcome], int] = {}  # request -> its first record
        self._held_in_flight: dict[cf.Future[Outcome], int] = {}  # request -> its raw bytes
        self._items: list[Pending] = []
        self._bytes = self._envelope
        self._held = 0  # raw record bytes of the queued items
        self._first_seq = 0
        self._refusals = RefusalStreak()
        self._ledger = ledger
        self._on_abandoned = on_abandoned

    def add(self, seq: int, item: Pending) -> bool:
        """Queue one event, and send a full request at once; False, and nothing queued, when
        the event alone is too large to send (Spotify takes at most 1 MB a request). One call
        an event: it is made hundreds of thousands of times a run."""
        size = len(item.body) + 1
        if self._envelope + size > MAX_BODY_BYTES + 1:
            return False
        if self._items and self._bytes + size > MAX_BODY_BYTES:
            self.flush()
        if not self._items:
            self._first_seq = seq
        self._items.append(item)
        self._bytes += size
        if isinstance(item.record, _KEPT_BYTES):  # what a rejection would decode
            self._held += len(item.record)
        if len(self._items) >= self._per_request or self._held >= REQUEST_HELD_BYTES:
            self.flush()
        return True

    def oldest_unfinished(self) -> int | None:
        """The number of the oldest record queued or in flight here; None when there is none."""
        firsts = list(self._in_flight.values())
        if self._items:
            firsts.append(self._first_seq)
        return min(firsts, default=None)

    def flush(self) -> None:
        """Send the partial request, if any, without waiting for it."""
        if not self._items:
            return
        while len(self._in_flight) >= self._max_in_flight() or (  # the items stay unfinished
            self._in_flight and sum(self._held_in_flight.values()) + self._held > HELD_BYTES
        ):
            self._collect(cf.FIRST_COMPLETED)
        items, self._items, self._bytes = self._items, [], self._envelope
        future = self._pool.submit(self._deliver, items)
        self._in_flight[future] = self._first_seq
        self._held_in_flight[future], self._held = self._held, 0
        self.poll()

    def poll(self) -> None:
        """Handle finished requests without blocking."""
        if self._in_flight:
            self._collect(None)

    def drain(self) -> None:
        """Send everything queued and wait until every request is finished."""
        self.flush()
        while self._in_flight:
            self._collect(cf.FIRST_COMPLETED)

    def close(self, *, abandon: bool = False) -> None:
        """Stop the workers; `abandon` when the run is failing and nothing more may be sent."""
        if abandon:
            self.transport.cut_in_flight()
        self._pool.shutdown(wait=True, cancel_futures=abandon)
        if abandon and self._on_abandoned is not None:
            for future in list(self._in_flight):
                if not future.cancelled() and future.exception() is None:
                    self._on_abandoned(future.result())
            self._in_flight.clear()

    def _max_in_flight(self) -> int:
        """Requests sent or waiting to be: twice the limit, and never fewer than twice the
        starting limit. The next request is ready the moment one may start, a limit cut low
        does not stall the reading, and no more events wait in memory than the API takes in
        two rounds.

        Until the first sign of trouble, never fewer than twice what the limit reaches in two
        round trips from its start: reading stopped for half of each of the first round
        trips against an API answering in 250 ms (46,000 and 45,200 events/s, then 47,300 and
        46,200: two sittings of 3 alternated runs). Not after: through an outage the queued
        requests each retry on their own, and held 50 MB more of raw records per connection."""
        limit = self._limit
        floor = 4 * START if limit.untroubled else START
        return 2 * max(limit.limit, min(floor, limit.cap))

    def _collect(self, return_when: str | None) -> None:
        if return_when is None:
            done = {future for future in self._in_flight if future.done()}
        else:
            done, _ = cf.wait(self._in_flight, return_when=return_when)
        for future in done:
            del self._in_flight[future]
            del self._held_in_flight[future]
            self._on_outcome(future.result())  # a failed request fails the run here

    def _deliver(self, items: list[Pending]) -> Outcome:
        outcome = Outcome(0, [])
        if self._ledger is None:
            self._send(items, outcome, None)
            return outcome
        # One look-up (or claim) per request, in its thread: events the ledger holds as
        # delivered are left out, and what the API acknowledges is recorded before the outcome
        # (and so the STATE) is handed back.
        with self._ledger.claim(self._connection_id, _events(items)) as claim:
            if claim.skip:
                sending = [item for item in items if item.event_id not in claim.skip]
                outcome.already_delivered = len(items) - len(sending)
                items = sending
            if items:
                self._send(items, outcome, claim)
        return outcome

    def _send(self, items: list[Pending], outcome: Outcome, claim: Claim | None) -> None:
        """POST, and on 400/413 split in halves until the refused events stand alone."""
        body = body_of(self._connection_id, [item.body for item in items])
        answer = self.transport.post(body, len(items))
        if answer.ok:
            if claim is not None:
                claim.record(_events(items), answer.status, answer.message)
            self._refusals.delivered()
            outcome.delivered += len(items)
            outcome.identifier_masks.update(item.identifiers for item in items)
        elif len(items) == 1:
            self._refusals.refused(answer)
            outcome.refused.append((items[0], _refusal(answer)))
        else:
            middle = len(items) // 2
            self._send(items[:middle], outcome, claim)
            self._send(items[middle:], outcome, claim)


def _events(items: list[Pending]) -> list[tuple[str, str]]:
    """The ledger's view of a request: ids and times, never the bodies."""
    return [(item.event_id, item.event_time) for item in items]


class WholesaleRefusal(DeliveryError):
    """The API refuses events one by one with nothing accepted: it refuses everything."""


class RefusalStreak:
    """Counts events refused one by one, across request threads, since the last delivery.

    A few bad events among good ones are isolated by bisection and rejected. But when an API
    (or a proxy, or a wrong endpoint) answers 400 to everything, bisection would reject every
    event, one request each, and the STATE would move past all of them: the input emptied into
    the rejects file. A streak this long with nothing delivered means the API, not the events.
    """

    LIMIT = 25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streak = 0

    def delivered(self) -> None:
        with self._lock:
            self._streak = 0

    def refused(self, answer: Answer) -> None:
        with self._lock:
            self._streak += 1
            streak = self._streak
        if streak >= self.LIMIT:
            raise WholesaleRefusal(
                f"the API refused {streak} events in a row, each on its own, and accepted none "
                f"in between; last answer: HTTP {answer.status}: {answer.message}. It looks like "
                "the API refuses everything (a contract change, a proxy, a wrong api_url): the "
                "run stops before any STATE covers these events"
            )


def _refusal(answer: Answer) -> Problem:
    if answer.status == 413:
        return Problem("api_too_large", f"HTTP 413 for a single event: {answer.message}")
    return Problem("api_rejected", f"HTTP {answer.status}: {answer.message}")
