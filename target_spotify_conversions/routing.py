"""Which Spotify connection a record goes to: its property, then its stream, then the default.

An agency or a company with several brands has one CAPI connection (and token) per advertiser
while its events sit in one table. Each record is routed by a pure function: the value of
`connection_property` (a key or a dotted path, as consent_property reads it), else the
stream's entry in `stream_connections`, else the top-level connection (named `default`).
No I/O, no SDK: the mapping workers route the records they decode, the reading process the
ones the SDK side rejects.

A value read from a record may be anything, even an email in a shifted column: a message
quotes it only when it has the shape of a connection name, else only its kind and length.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .input_formats import lookup, split_path
from .privacy import is_hidden
from .problems import Problem
from .values import is_absent

if TYPE_CHECKING:
    from .mapping import MappingOptions

# The name of the top-level capi_connection_id/auth_token pair among the connections.
DEFAULT_CONNECTION = "default"
UNKNOWN_CONNECTION = "unknown_connection"
# What a connection name may be: it names files (dry run) and shows in logs and reports.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A name-shaped value with this many digits could be a phone number: never quoted.
_MAX_DIGITS_SHOWN = 6


@dataclass(frozen=True)
class Route:
    """Where a record goes: a connection name, or the reason it goes nowhere."""

    connection: str | None
    problem: Problem | None = None


class Router:
    """Routes records for one run; built once from the routing settings."""

    def __init__(
        self,
        names: Collection[str],
        *,
        connection_property: str | None = None,
        stream_connections: Mapping[str, str] | None = None,
        hidden: Collection[str] = (),
    ) -> None:
        """`names`: every connection of the run, `default` among them when the top-level
        pair is set. `hidden`: SHA-256 digests (hex) of values never to quote, the tokens: a
        short token pasted into the routing column has a name's shape."""
        self._names = frozenset(names)
        self._hidden = frozenset(hidden)
        self._property = connection_property
        self._path = split_path(connection_property) if connection_property else ()
        self._streams = dict(stream_connections or {})
        self._default = DEFAULT_CONNECTION if DEFAULT_CONNECTION in self._names else None
        # The top-level pair alone: nothing to choose. (A named connection alone still needs
        # a property or a stream to route to it: a record nothing routes is rejected.)
        single = self._names == {DEFAULT_CONNECTION} and not self._path and not self._streams
        self._only = Route(next(iter(self._names))) if single else None

    def route(self, record: Mapping[str, Any], stream: str) -> Route:
        """The record's connection: its property's value, else its stream's, else the default.

        A present property value that names no connection rejects the record (a typo must
        not send one brand's events to another), as does a record nothing routes.
        """
        if self._only is not None:  # one connection, nothing to choose: the common case
            return self._only
        if self._property is not None:
            value = record.get(self._property) if self._property in record else None
            if value is None:
                value = lookup(record, self._path)
            if not is_absent(value):
                return self._named(value)
        name = self._streams.get(stream, self._default)
        if name is not None:
            return Route(name)
        return Route(
            None,
            Problem(
                UNKNOWN_CONNECTION,
                "no connection: "
                + (f"{self._property} is absent, " if self._property else "")
                + f"stream {_quoted(stream)} is not in stream_connections, and no top-level "
                "capi_connection_id is set",
            ),
        )

    def _named(self, value: object) -> Route:
        text = value.strip() if isinstance(value, str) else _integer_text(value)
        if text is not None and text in self._names:
            return Route(text)
        return Route(
            None,
            Problem(
                UNKNOWN_CONNECTION,
                f"{self._property} {shown(value, self._hidden)} names no connection (known: "
                + _some(sorted(self._names))
                + ")",
            ),
        )


def router_for(options: MappingOptions) -> Router:
    """The run's router from the options the mapping workers receive."""
    return Router(
        options.connection_names or (DEFAULT_CONNECTION,),
        connection_property=options.connection_property,
        stream_connections=options.stream_connections,
        hidden=options.hidden_digests,
    )


def shown(value: object, hidden: Collection[str] = ()) -> str:
    """A routing value as a message may show it: quoted when it looks like a connection name
    (short, letters, digits, `_`, `-`, few digits) and is none of the `hidden` digests'
    values, else only its kind and length."""
    if isinstance(value, str):
        text = value.strip()
        digits = sum(char.isdigit() for char in text)
        if NAME_PATTERN.fullmatch(text) and digits <= _MAX_DIGITS_SHOWN and not is_hidden(
            text, hidden
        ):
            return _quoted(text)
        return f"(a string of {len(value)} characters, not shown)"
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if _integer_text(value) is not None:
        return "(a number, not shown)"
    return f"(a value of type {type(value).__name__}, not shown)"


def _integer_text(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "\\'")[:80] + "'"


def _some(names: list[str], most: int = 10) -> str:
    """The first names, and how many more: a reason stays short with a thousand connections."""
    more = len(names) - most
    return ", ".join(names[:most]) + (f" and {more} more" if more > 0 else "")
