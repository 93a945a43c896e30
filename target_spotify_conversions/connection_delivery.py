"""Delivery to several Spotify connections: one transport and one Delivery per connection.

Each connection has its own token and id, so its own transport (HTTP client or dry-run file)
and its own Delivery: a request holds one connection's events only, and bisection, retries,
Retry-After and the in-flight limit work per connection (one connection's 429 does not slow
the others). Deliveries are made when a connection's first event arrives; the oldest unfinished
record across all of them is what holds the STATE back. No SDK here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from .client import Aborted
from .delivery import Delivery, Pending
from .transport import DeliveryError, Transport

# Makes a connection's Delivery: (name, transport, connection id) -> Delivery.
DeliveryFactory = Callable[[str, Transport, str], Delivery]


class ConnectionDeliveries:
    """Every connection's Delivery, with the calls the pipeline makes of one, for all."""

    def __init__(
        self,
        connection_ids: Mapping[str, str],
        transports: Mapping[str, Transport],
        make_delivery: DeliveryFactory,
        *,
        named: bool = False,
    ) -> None:
        """`named`: errors that stop the run say which connection they came from (there are
        several: "the auth_token is wrong" must say whose)."""
        self._ids = dict(connection_ids)
        self.transports = dict(transports)
        self._make = make_delivery
        self._named = named
        self._deliveries: dict[str, Delivery] = {}

    def delivery(self, connection: str) -> Delivery:
        """The connection's Delivery, made at its first event."""
        found = self._deliveries.get(connection)
        if found is None:
            found = self._make(connection, self.transports[connection], self._ids[connection])
            self._deliveries[connection] = found
        return found

    def add(self, connection: str, seq: int, item: Pending) -> bool:
        """Queue an event for its connection (Delivery.add); False: it alone is too large."""
        try:  # per event: no context manager of its own on this path
            return self.delivery(connection).add(seq, item)
        except DeliveryError as exc:
            raise self._named_error(exc, connection) from None

    def oldest_unfinished(self) -> int | None:
        """The oldest record queued or in flight for any connection; None when there is none."""
        firsts = [delivery.oldest_unfinished() for delivery in self._deliveries.values()]
        return min((first for first in firsts if first is not None), default=None)

    def flush(self) -> None:
        for name, delivery in list(self._deliveries.items()):
            with self._naming(name):
                delivery.flush()

    def poll(self) -> None:
        for name, delivery in list(self._deliveries.items()):
            with self._naming(name):
                delivery.poll()

    def drain(self) -> None:
        """Send everything queued, every connection's requests at once, and wait for all."""
        self.flush()
        for name, delivery in list(self._deliveries.items()):
            with self._naming(name):
                delivery.drain()

    @contextmanager
    def _naming(self, connection: str) -> Iterator[None]:
        """A connection's request failures (collected in these calls) say whose they are:
        its name, never its token."""
        try:
            yield
        except DeliveryError as exc:
            raise self._named_error(exc, connection) from None

    def _named_error(self, exc: DeliveryError, connection: str) -> DeliveryError:
        """The error, its message prefixed with the connection's name when there are several
        (an Aborted request says nothing of its own and stays as it is)."""
        if isinstance(exc, Aborted) or not self._named:
            return exc
        return type(exc)(f"connection {connection!r}: {exc}")

    def abort(self) -> None:
        for transport in self.transports.values():
            transport.abort()

    def close(self, *, abandon: bool) -> None:
        """Stop every connection's requests (at once when abandoning), then release them."""
        if abandon:  # first cut all, so no connection's request is still running meanwhile
            for transport in self.transports.values():
                transport.cut_in_flight()
        for delivery in self._deliveries.values():
            delivery.close(abandon=abandon)
        for transport in self.transports.values():
            transport.close()

    def requests_by_connection(self) -> dict[str, tuple[int, int]]:
        """Requests and retries of each connection."""
        return {
            name: (transport.counts.requests, transport.counts.retries)
            for name, transport in self.transports.items()
        }
