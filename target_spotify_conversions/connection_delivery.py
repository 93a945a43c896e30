"""Delivery to several Spotify connections: one transport and one Delivery per connection.

Each connection has its own token and id, so its own transport (HTTP client or dry-run file)
and its own Delivery: a request holds one connection's events only, and bisection, retries,
Retry-After and the in-flight limit work per connection (one connection's 429 does not slow
the others). Deliveries are made when a connection's first event arrives; the oldest unfinished
record across all of them is what holds the STATE back. No SDK here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from .client import Aborted
from .delivery import Delivery, Pending
from .routing import DEFAULT_CONNECTION
from .transport import Answer, DeliveryError, Transport

# Makes a connection's Delivery: (name, transport, connection id) -> Delivery.
DeliveryFactory = Callable[[str, Transport, str], Delivery]


class ConnectionDeliveries:
    """Every connection's Delivery, with the calls the pipeline makes of one, for all."""

    def __init__(
        self,
        connection_ids: Mapping[str, str],
        transports: Mapping[str, Transport],
        make_delivery: DeliveryFactory,
    ) -> None:
        self._ids = dict(connection_ids)
        self.transports = dict(transports)
        self._make = make_delivery
        self._deliveries: dict[str, Delivery] = {}

    def delivery(self, connection: str) -> Delivery:
        """The connection's Delivery, made at its first event."""
        found = self._deliveries.get(connection)
        if found is None:
            found = self._make(connection, self.transports[connection], self._ids[connection])
            self._deliveries[connection] = found
        return found

    def fits(self, connection: str, item: Pending) -> bool:
        return self.delivery(connection).fits(item)

    def add(self, connection: str, seq: int, item: Pending) -> None:
        self.delivery(connection).add(seq, item)

    def oldest_unfinished(self) -> int | None:
        """The oldest record queued or in flight for any connection; None when there is none."""
        firsts = [delivery.oldest_unfinished() for delivery in self._deliveries.values()]
        return min((first for first in firsts if first is not None), default=None)

    def flush(self) -> None:
        for delivery in list(self._deliveries.values()):
            delivery.flush()

    def poll(self) -> None:
        for delivery in list(self._deliveries.values()):
            delivery.poll()

    def drain(self) -> None:
        """Send everything queued, every connection's requests at once, and wait for all."""
        deliveries = list(self._deliveries.values())
        for delivery in deliveries:
            delivery.flush()
        for delivery in deliveries:
            delivery.drain()

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

    @property
    def requests_made(self) -> int:
        return sum(transport.requests_made for transport in self.transports.values())

    @property
    def retries(self) -> int:
        return sum(transport.retries for transport in self.transports.values())

    def requests_by_connection(self) -> dict[str, tuple[int, int]]:
        """Requests and retries of each connection."""
        return {
            name: (transport.requests_made, transport.retries)
            for name, transport in self.transports.items()
        }


class NamedTransport:
    """A connection's transport whose run-stopping errors name the connection (its name, never
    its token): with several connections, "the auth_token is wrong" must say whose."""

    def __init__(self, name: str, transport: Transport) -> None:
        self._name = name
        self._transport = transport

    @property
    def requests_made(self) -> int:
        return self._transport.requests_made

    @requests_made.setter
    def requests_made(self, value: int) -> None:
        self._transport.requests_made = value

    @property
    def retries(self) -> int:
        return self._transport.retries

    @retries.setter
    def retries(self, value: int) -> None:
        self._transport.retries = value

    def post(self, body: bytes, event_count: int) -> Answer:
        try:
            return self._transport.post(body, event_count)
        except Aborted:
            raise
        except DeliveryError as exc:
            raise type(exc)(f"connection {self._name!r}: {exc}") from None

    def abort(self) -> None:
        self._transport.abort()

    def cut_in_flight(self) -> None:
        self._transport.cut_in_flight()

    def close(self) -> None:
        self._transport.close()


def dry_run_path(dry_run_file: str, connection: str) -> str:
    """Where a connection's dry-run bodies go: `dry_run_file` for the default connection,
    beside it with the connection's name before the suffix for the others
    (`dry-run.jsonl` -> `dry-run.brand_a.jsonl`), so each line stays an exact request body."""
    if connection == DEFAULT_CONNECTION:
        return dry_run_file
    path = Path(dry_run_file)
    return str(path.with_name(f"{path.stem}.{connection}{path.suffix}"))
