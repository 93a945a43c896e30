"""A strict local fake of the Spotify Conversions API ingestion endpoint.

Why it exists: Spotify offers no test or validate-only mode (see docs/spotify-api.md), so the
target's delivery code (docs/contract.md §6) is exercised against this server instead. It checks
every request against the published contract (and records each breach in
``contract_violations`` so a test can assert there were none), records what it accepted, and
injects the faults the real API may produce: 5xx, 429 with Retry-After, dropped connections,
latency, a rate limit in events per second, outages (refused connections at start, or 5xx)
and 4xx refusals of single events.

Standard library only (plus pycountry and msgspec, dependencies of the project), so it also
runs as a stand-alone process, for users rehearsing a pipeline offline and for benchmarks::

    spotify-capi-sandbox --port 8765 --token T --connection-id C [--count-only]
                         [--credential T2=C2 ...] [--latency S] [--events-per-second N]
                         [--refuse-for S]

prints ``URL <url>`` (point the target's api_url at it, auth_token T, capi_connection_id C),
answers an event that breaks the contract with 400 naming the field, serves JSON counts at
``GET /_stats`` (requests, accepted_events and accepted_by_connection, refused_events by
reason, statuses), and on
SIGTERM/SIGINT (Ctrl-C) stops and prints those counts as one line of JSON.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import http.server
import ipaddress
import json
import math
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec
import pycountry

EVENTS_PATH = "/capi-direct/events/"
STATS_PATH = "/_stats"

EVENT_NAMES = frozenset(
    {"VIEW", "PRODUCT", "ADD_TO_CART", "CHECK_OUT", "PURCHASE", "LEAD", "SIGN_UP", "ALIAS"}
    | {f"CUSTOM_EVENT_{n}" for n in range(1, 6)}
)
EVENT_KEYS = frozenset(
    {
        "event_name",
        "event_id",
        "event_time",
        "user_data",
        "event_details",
        "action_source",
        "event_source_url",
        "opt_out_targeting",
    }
)
REQUIRED_EVENT_KEYS = ("event_name", "event_id", "event_time", "user_data")
USER_DATA_IDENTIFIERS = ("ip_address", "device_id", "hashed_emails", "hashed_phone_number")
USER_DATA_IP_KEYS = frozenset({"ip_address", "request_ip_address", "event_ip_address"})
USER_DATA_STRING_KEYS = frozenset(
    {
        "device_id",
        "user_agent",
        "platform_id",
        "session_id",
        "alias_id",
        "cookie1",
        "page_id",
        "connection_type",
        "age_group",
        "clickID",
    }
)
USER_DATA_KEYS = (
    USER_DATA_IP_KEYS
    | USER_DATA_STRING_KEYS
    | {
        "hashed_emails",
        "hashed_phone_number",
        "gender",
    }
)
GENDERS = frozenset({"MALE", "FEMALE"})
EVENT_DETAILS_KEYS = frozenset({"amount", "currency", "content_name", "content_category"})
ACTION_SOURCES = frozenset({"WEB", "APP", "OFFLINE"})
FIVE_XX = (500, 502, 503, 504)

#: How far ahead of this machine's clock an event_time may be (clock skew allowance).
FUTURE_TOLERANCE_S = 5.0
#: Timing slack for Retry-After checks: requests already in flight when a 429 was answered,
#: sent by another thread before the client could read the 429 (on a loaded 2-core machine a
#: thread waits for the interpreter lock for a tenth of a second and more: 0.12 s was seen),
#: and client-side timer inaccuracy, are not the client's fault.
RETRY_AFTER_SLACK_S = 0.2

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_EVENT_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DIGITS = re.compile(r"[0-9]+")
_CURRENCY_SHAPE = re.compile(r"[A-Z]{3}")
_SAFE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]{0,40}")


# --------------------------------------------------------------------------------------------
# Contract checks (pure functions; also usable on dry-run bodies)
# --------------------------------------------------------------------------------------------


def _key_name(key: object) -> str:
    """A key for a message; anything not identifier-like could be data, so it is not shown."""
    if isinstance(key, str) and _SAFE_KEY.fullmatch(key):
        return repr(key)
    return "<non-identifier key>"


def _one_of(value: object, choices: frozenset[str]) -> bool:
    """Membership that does not raise on unhashable JSON values (lists, objects)."""
    return isinstance(value, str) and value in choices


def _nonblank_str(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


@functools.lru_cache(maxsize=512)
def _known_currency(code: str) -> bool:
    """ISO 4217 per pycountry; cached because lookups are slow and codes repeat."""
    return pycountry.currencies.get(alpha_3=code) is not None


@functools.lru_cache(maxsize=4096)
def _is_ip(text: str) -> bool:
    """IPv4 or IPv6 per the ipaddress module; cached because the same visitors recur."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_event_time(value: object, where: str, now: float) -> list[str]:
    """RFC 3339 in UTC with a `Z`, a real date, at most FUTURE_TOLERANCE_S ahead."""
    if not isinstance(value, str):
        return [f"{where}.event_time: not a string"]
    m = _EVENT_TIME.fullmatch(value)
    if m is None:
        return [f"{where}.event_time: not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.fff]Z)"]
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return [f"{where}.event_time: not a real date and time"]
    stamp = moment.timestamp() + float("0." + (m.group(7) or "0"))
    if stamp > now + FUTURE_TOLERANCE_S:
        return [f"{where}.event_time: more than {FUTURE_TOLERANCE_S:g} s in the future"]
    return []


def _check_user_data(user_data: object, where: str) -> list[str]:
    where = f"{where}.user_data"
    if not isinstance(user_data, dict):
        return [f"{where}: not a JSON object"]
    out = [f"{where}: unexpected key {_key_name(k)}" for k in user_data if k not in USER_DATA_KEYS]
    if not any(k in user_data for k in USER_DATA_IDENTIFIERS):
        out.append(f"{where}: none of {', '.join(USER_DATA_IDENTIFIERS)}")
    if "hashed_emails" in user_data:
        emails = user_data["hashed_emails"]
        if not isinstance(emails, list) or not emails:
            out.append(f"{where}.hashed_emails: not a non-empty list")
        else:
            for j, digest in enumerate(emails):
                if not (isinstance(digest, str) and _SHA256_HEX.fullmatch(digest)):
                    out.append(f"{where}.hashed_emails[{j}]: not a lowercase hex SHA-256 digest")
            hashable = [d for d in emails if isinstance(d, str)]
            if len(set(hashable)) != len(hashable):
                out.append(f"{where}.hashed_emails: duplicate digests")
    if "hashed_phone_number" in user_data:
        phone = user_data["hashed_phone_number"]
        if not (isinstance(phone, str) and _SHA256_HEX.fullmatch(phone)):
            out.append(f"{where}.hashed_phone_number: not a lowercase hex SHA-256 digest")
    for key in sorted(USER_DATA_IP_KEYS & user_data.keys()):
        ip = user_data[key]
        if not (isinstance(ip, str) and _is_ip(ip)):
            out.append(f"{where}.{key}: not an IPv4 or IPv6 address")
    if "gender" in user_data and not _one_of(user_data["gender"], GENDERS):
        out.append(f"{where}.gender: not MALE or FEMALE")
    for key in sorted(USER_DATA_STRING_KEYS & user_data.keys()):
        if not _nonblank_str(user_data[key]):
            out.append(f"{where}.{key}: not a non-empty string")
    return out


def _check_event_details(details: object, where: str) -> list[str]:
    where = f"{where}.event_details"
    if not isinstance(details, dict):
        return [f"{where}: not a JSON object"]
    out = [
        f"{where}: unexpected key {_key_name(k)}" for k in details if k not in EVENT_DETAILS_KEYS
    ]
    if "amount" in details:
        amount = details["amount"]
        if (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not math.isfinite(amount)
        ):
            out.append(f"{where}.amount: not a JSON number")
    if "currency" in details:
        cur = details["currency"]
        if not (isinstance(cur, str) and _CURRENCY_SHAPE.fullmatch(cur) and _known_currency(cur)):
            out.append(f"{where}.currency: not an ISO 4217 code")
    if "content_name" in details and not _nonblank_str(details["content_name"]):
        out.append(f"{where}.content_name: not a non-empty string")
    if "content_category" in details:
        cat = details["content_category"]
        if not (isinstance(cat, str) and _DIGITS.fullmatch(cat)):
            out.append(f"{where}.content_category: not a taxonomy id (string of digits)")
    return out


def check_event(event: object, index: int, *, now: float | None = None) -> list[str]:
    """Contract breaches of one event, as messages naming fields and the index, never values.

    `event_id` is checked by :func:`check_body` together with the other ids of the request.
    """
    where = f"events[{index}]"
    if not isinstance(event, dict):
        return [f"{where}: not a JSON object"]
    now = time.time() if now is None else now
    out = [f"{where}: unexpected key {_key_name(k)}" for k in event if k not in EVENT_KEYS]
    out += [f"{where}: missing {k}" for k in REQUIRED_EVENT_KEYS if k not in event]
    name = event.get("event_name")
    if "event_name" in event and not _one_of(name, EVENT_NAMES):
        out.append(f"{where}.event_name: not a Spotify event name")
    if "event_time" in event:
        out += _check_event_time(event["event_time"], where, now)
    if "user_data" in event:
        out += _check_user_data(event["user_data"], where)
    if "event_details" in event:
        out += _check_event_details(event["event_details"], where)
    if name == "PURCHASE":
        details = event.get("event_details")
        details = details if isinstance(details, dict) else {}
        out += [
            f"{where}: PURCHASE without event_details.{k}"
            for k in ("amount", "currency")
            if k not in details
        ]
    if "action_source" in event and not _one_of(event["action_source"], ACTION_SOURCES):
        out.append(f"{where}.action_source: not WEB, APP or OFFLINE")
    if "event_source_url" in event:
        url = event["event_source_url"]
        prefix_ok = isinstance(url, str) and url.startswith(("http://", "https://"))
        if not prefix_ok or len(url.split("://", 1)[1]) == 0:
            out.append(f"{where}.event_source_url: not an http:// or https:// URL")
    if "opt_out_targeting" in event and not isinstance(event["opt_out_targeting"], bool):
        out.append(f"{where}.opt_out_targeting: not a JSON boolean")
    return out


_EVENT_MESSAGE = re.compile(r"events\[([0-9]+)\][.:]? ?(.*)", re.DOTALL)
_LIST_INDEX = re.compile(r"\[[0-9]+\]")


def refusal_reason(message: str) -> tuple[int | None, str]:
    """The index of the event a 400's message names (None: the whole request) and the reason:
    the field and what is wrong with it, without list indexes, so equal faults count as one
    reason (`user_data.hashed_emails: not a lowercase hex SHA-256 digest`)."""
    found = _EVENT_MESSAGE.fullmatch(message)
    if found is None:
        return None, _LIST_INDEX.sub("", message)
    return int(found.group(1)), _LIST_INDEX.sub("", found.group(2))


@dataclass
class BodyCheck:
    """What :func:`check_body` found: breaches, the envelope's parts, the request's ids."""

    violations: list[str] = field(default_factory=list)
    connection_id: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


def check_body(body: object, *, per_event: bool = True, now: float | None = None) -> BodyCheck:
    """Check a parsed request body: envelope, event ids (non-empty, unique), and (unless
    `per_event` is false, as in count-only mode) every field of every event."""
    result = BodyCheck()
    out = result.violations
    if not isinstance(body, dict):
        out.append("body: not a JSON object")
        return result
    out += [f"body: unexpected key {_key_name(k)}" for k in body if k != "conversion_events"]
    envelope = body.get("conversion_events")
    if not isinstance(envelope, dict):
        out.append("body.conversion_events: missing or not a JSON object")
        return result
    out += [
        f"body.conversion_events: unexpected key {_key_name(k)}"
        for k in envelope
        if k not in ("capi_connection_id", "events")
    ]
    cid = envelope.get("capi_connection_id")
    if not (isinstance(cid, str) and _UUID.fullmatch(cid)):
        out.append("capi_connection_id: missing or not a UUID string")
    else:
        result.connection_id = cid
    events = envelope.get("events")
    if not isinstance(events, list) or not events:
        out.append("events: missing, not a list, or empty")
        return result
    first_seen: dict[str, int] = {}
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            out.append(f"events[{i}]: not a JSON object")
            continue
        result.events.append(event)
        if "event_id" not in event:
            if not per_event:  # per-event checks report it as a missing required key
                out.append(f"events[{i}]: missing event_id")
            continue
        event_id = event["event_id"]
        if not _nonblank_str(event_id):
            out.append(f"events[{i}].event_id: not a non-empty string")
            continue
        if event_id in first_seen:
            out.append(f"events[{i}].event_id: duplicates events[{first_seen[event_id]}]")
        else:
            first_seen[event_id] = i
        result.event_ids.append(event_id)
    if per_event:
        now = time.time() if now is None else now
        for i, event in enumerate(events):
            if isinstance(event, dict):
                out += check_event(event, i, now=now)
    return result


class _CountedEvent(msgspec.Struct):
    event_id: str


class _CountedEnvelope(msgspec.Struct, forbid_unknown_fields=True):
    capi_connection_id: str
    events: list[_CountedEvent]


class _CountedBody(msgspec.Struct, forbid_unknown_fields=True):
    conversion_events: _CountedEnvelope


_COUNTED_BODY = msgspec.json.Decoder(_CountedBody)


def count_body(body: bytes) -> BodyCheck | None:
    """count_only's reading of a well-formed body: the envelope and the event ids, which is all
    `check_body(per_event=False)` checks, at a fifth of the CPU (the benchmark's fake shares the
    machine with the target it measures). None when anything is off: the full reading then
    says what."""
    try:
        envelope = _COUNTED_BODY.decode(body).conversion_events
    except msgspec.DecodeError:  # not JSON, not UTF-8, NaN, a wrong shape or type
        return None
    ids = [event.event_id for event in envelope.events]
    if (
        not ids
        or not _UUID.fullmatch(envelope.capi_connection_id)
        or len(set(ids)) != len(ids)
        or not all(_nonblank_str(event_id) for event_id in ids)
    ):
        return None
    events = [{"event_id": event_id} for event_id in ids]
    return BodyCheck(connection_id=envelope.capi_connection_id, events=events, event_ids=ids)


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it (requests to /_stats are not recorded)."""

    arrival: float  # time.monotonic() when its headers had been read
    status: int | None  # status answered; None = connection dropped without an answer
    event_ids: list[str]  # ids of the events in it (empty in count_only mode)
    body_size: int  # bytes
    fault: str | None  # "always", "outage", "fail_next", "p_5xx", "p_429", "p_drop",
    #                    "reject_events", or None
    method: str = "POST"
    path: str = EVENTS_PATH
    n_events: int = 0  # events in it, also in count_only mode
    seq: int = 0  # 1-based arrival number
    answered: float = 0.0  # time.monotonic() when its answer was decided (body read)
    retry_after: int | None = None  # seconds announced in a Retry-After header, if any
    connection_id: str | None = None  # of a request whose token and connection were accepted


@dataclass(frozen=True)
class _Config:
    """Fault settings; replaced as a whole so a handler always sees one consistent set."""

    p_5xx: float = 0.0
    p_429: float = 0.0
    p_drop: float = 0.0
    retry_after: float | None = 1.0
    latency: float = 0.0
    max_events: int | None = None
    max_body_bytes: int | None = 1_000_000
    events_per_second: float | None = None


@dataclass(frozen=True)
class _Fault:
    name: str
    status: int  # 0 = drop the connection
    retry_after: float | None = None


@dataclass
class _Outcome:
    """The answer the contract checks arrived at, before faults are considered."""

    status: int
    messages: list[str] = field(default_factory=list)
    error_code: str | None = None
    violations: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    fault: str | None = None
    connection_id: str | None = None


class _DropConnection(Exception):
    """Raised to abandon a request whose body could not be read (client went away)."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeSpotify

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that hang up; keep anything else for the tests to see."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        self.fake._internal_error(exc)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections as in production
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark sends many thousands of requests."""

    # Buffered writes, flushed once per answer: headers and body leave in one segment, so
    # Nagle's algorithm and delayed ACKs cannot add ~40 ms to every request.
    wbufsize = 1 << 16

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._connection_closed(self.connection)

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST


class FakeSpotify:
    """The fake endpoint. Use as a context manager, or start()/stop().

    Thread-safe: handlers run in their own threads; all shared state is behind one lock, and
    the public views (`accepted`, `requests`, ...) are copies.
    """

    #: Status value for fail_next/outage/always meaning "close the connection, answer nothing".
    DROP = 0

    def __init__(
        self,
        *,
        token: str = "test-token",  # noqa: S107 - the sandbox's own default, not a secret
        connection_id: str = "3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01",
        count_only: bool = False,
        seed: int = 0,
        port: int = 0,
        credentials: Mapping[str, str] | None = None,
        refuse_for: float = 0.0,
    ) -> None:
        """`token` and `connection_id`: the one pair most tests need; `credentials`: more
        pairs, token to connection id (several CAPI connections, each with its own token).
        refuse_for: seconds after start() during which connections are refused (the port
        is bound, so it stays this server's, but nothing listens): an outage at start."""
        pairs = {token: connection_id, **(credentials or {})}
        if not all(_UUID.fullmatch(cid) for cid in pairs.values()):
            raise ValueError("connection_id must be a UUID (the real API's connection ids are)")
        self.token = token
        self.connection_id = connection_id
        self.credentials = pairs
        self.count_only = count_only
        self._port = port
        self._refuse_for = refuse_for
        self._stopping = threading.Event()
        self._listening = False
        self._tokens = 0.0  # the rate limit's bucket (events), filled to one second's worth
        self._tokens_at: float | None = None
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._cfg = _Config()
        self._fail_queue: collections.deque[list[Any]] = collections.deque()
        self._outage_until = 0.0
        self._outage_status = 503
        self._always: int | None = None
        self._reject: frozenset[str] = frozenset()
        # (seq, answered, not_before, Authorization): a rate limit holds one token's requests,
        # so with several connections another connection's requests may go meanwhile.
        self._retry_windows: list[tuple[int, float, float, str]] = []
        self._reset_records()
        self._open_conns: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _reset_records(self) -> None:
        self._accepted: dict[str, dict[str, Any]] = {}
        self._ids: set[str] = set()
        self._ids_by_connection: dict[str, set[str]] = collections.defaultdict(set)
        self._accepted_count = 0
        self._requests: list[RequestRecord] = []
        self._seq = 0
        self._violations: list[str] = []
        self._ra_violations: list[str] = []
        self._errors: list[str] = []
        self._statuses: collections.Counter[int] = collections.Counter()
        self._faults: collections.Counter[str] = collections.Counter()
        self._dropped = 0
        self._events_received = 0
        self._bytes_received = 0
        self._connections = 0
        self._first_arrival: float | None = None
        self._last_answer: float | None = None
        self._refused: collections.defaultdict[str, set[str]] = collections.defaultdict(set)

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> FakeSpotify:
        """Bind 127.0.0.1 (port 0 = any free port) and serve in a daemon thread (after
        `refuse_for` seconds of refused connections, if set)."""
        if self._server is not None:
            raise RuntimeError("already started")
        server = _Server(("127.0.0.1", self._port), _Handler, bind_and_activate=False)
        try:
            server.server_bind()
        except OSError:
            server.server_close()
            raise
        server.fake = self
        self._server = server
        self._stopping.clear()
        if self._refuse_for <= 0:
            self._listen(server)  # before start() returns: a client may connect at once
        self._thread = threading.Thread(
            target=self._serve, args=(server,), name="fake-spotify", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self, server: _Server) -> None:
        """Listen (after the outage at start, if any) and serve until stop()."""
        refusing = self._refuse_for > 0
        if refusing and (self._stopping.wait(self._refuse_for) or not self._listen(server)):
            return
        server.serve_forever(poll_interval=0.01)  # stop() waits for one poll

    def _listen(self, server: _Server) -> bool:
        """Start listening, unless stop() came first."""
        with self._lock:
            if self._stopping.is_set():
                return False
            server.server_activate()
            self._listening = True
            return True

    def stop(self) -> None:
        """Stop serving and close kept-alive connections too, so clients see the server go."""
        server, self._server = self._server, None
        if server is None:
            return
        with self._lock:
            self._stopping.set()
            listening, self._listening = self._listening, False
        if listening:
            server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._open_conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSpotify:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSpotify is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The events endpoint, trailing slash included."""
        return f"http://127.0.0.1:{self.port}{EVENTS_PATH}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{STATS_PATH}"

    # ---- what was received -------------------------------------------------------------------

    @property
    def accepted(self) -> dict[str, dict[str, Any]]:
        """event_id -> the last accepted copy of that event (empty in count_only mode)."""
        with self._lock:
            return dict(self._accepted)

    def accepted_ids(self) -> set[str]:
        with self._lock:
            return set(self._ids)

    def accepted_ids_by_connection(self) -> dict[str, set[str]]:
        """Connection id (lower case) -> ids of the events accepted for it."""
        with self._lock:
            return {cid: set(ids) for cid, ids in self._ids_by_connection.items()}

    @property
    def accepted_count(self) -> int:
        """Events in 2xx answers, re-sends included."""
        with self._lock:
            return self._accepted_count

    @property
    def arrived(self) -> int:
        """Requests that arrived, answered or not (`requests` holds the answered ones): with
        a latency, the ones in flight are the difference."""
        with self._lock:
            return self._seq

    @property
    def unique_count(self) -> int:
        with self._lock:
            return len(self._ids)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def contract_violations(self) -> list[str]:
        """Every breach seen, as `request #n (status): field: problem`; no values."""
        with self._lock:
            return list(self._violations)

    @property
    def retry_after_violations(self) -> list[str]:
        with self._lock:
            return list(self._ra_violations)

    @property
    def internal_errors(self) -> list[str]:
        """Exceptions inside the fake itself (a bug here, not in the client)."""
        with self._lock:
            return list(self._errors)

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks (also served as JSON at GET /_stats)."""
        with self._lock:
            elapsed = 0.0
            if self._first_arrival is not None and self._last_answer is not None:
                elapsed = max(0.0, self._last_answer - self._first_arrival)
            return {
                "requests": len(self._requests),
                "accepted_count": self._accepted_count,
                "unique_count": len(self._ids),
                "events_received": self._events_received,
                "bytes_received": self._bytes_received,
                "statuses": collections.Counter(self._statuses),
                "dropped": self._dropped,
                "faults": collections.Counter(self._faults),
                "connections": self._connections,
                "contract_violations": len(self._violations),
                "retry_after_violations": len(self._ra_violations),
                "internal_errors": len(self._errors),
                "elapsed_s": round(elapsed, 6),
                "accepted_events": len(self._ids),
                # distinct ids per capi_connection_id: an agency's rehearsal, brand by brand
                "accepted_by_connection": {  # every connection it takes, 0 included
                    cid: len(self._ids_by_connection.get(cid, ()))
                    for cid in sorted(
                        {*map(str.lower, self.credentials.values()), *self._ids_by_connection}
                    )
                },
                "refused_events": {
                    reason: len(ids) for reason, ids in sorted(self._refused.items())
                },
            }

    # ---- fault injection ---------------------------------------------------------------------

    def configure(
        self,
        *,
        p_5xx: float = 0.0,
        p_429: float = 0.0,
        p_drop: float = 0.0,
        retry_after: float | None = 1.0,
        latency: float = 0.0,
        max_events: int | None = None,
        max_body_bytes: int | None = 1_000_000,
        events_per_second: float | None = None,
    ) -> None:
        """Replace ALL these settings at once (an argument left out returns to its default).

        p_*: per-request probabilities (sum <= 1). retry_after: seconds announced on 429s
        (None: no header). latency: seconds to sleep before each answer. max_events /
        max_body_bytes: larger requests get 413 (None: no limit). events_per_second: a rate
        limit (a bucket of one second's worth of events, refilled continuously); a valid
        request beyond it gets 429 with a Retry-After of the whole seconds until it would fit.
        """
        for p in (p_5xx, p_429, p_drop):
            if not 0.0 <= p <= 1.0:
                raise ValueError("probabilities must be within 0..1")
        if p_5xx + p_429 + p_drop > 1.0 + 1e-9:
            raise ValueError("p_5xx + p_429 + p_drop must not exceed 1")
        if (retry_after is not None and retry_after < 0) or latency < 0:
            raise ValueError("retry_after and latency must not be negative")
        if events_per_second is not None and events_per_second <= 0:
            raise ValueError("events_per_second must be positive")
        cfg = _Config(
            p_5xx, p_429, p_drop, retry_after, latency, max_events, max_body_bytes,
            events_per_second,
        )
        with self._lock:
            self._cfg = cfg
            self._tokens, self._tokens_at = events_per_second or 0.0, None

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """Answer the next n requests with `status` (FakeSpotify.DROP = close, no answer).

        Calls queue up: fail_next(1, 503); fail_next(1, 429, 2) answers 503 then 429.
        retry_after adds a Retry-After header (for a 429 without it, configure's retry_after).
        A 2xx status here still runs the checks and accepts a valid request.
        """
        if n > 0:
            with self._lock:
                self._fail_queue.append([n, status, retry_after])

    def outage(self, seconds: float, status: int = 503) -> None:
        """Answer every request with `status` until `seconds` from now (0 ends an outage)."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds
            self._outage_status = status

    def always(self, status: int | None) -> None:
        """Answer every request with `status`; None = back to normal."""
        with self._lock:
            self._always = status

    def reject_events(self, event_ids: set[str]) -> None:
        """Refuse, with 400 naming their indexes, any request holding one of these ids.

        Replaces the previous set; an empty set refuses nothing. Not a contract violation:
        it plays the real API refusing a value it does not like.
        """
        with self._lock:
            self._reject = frozenset(event_ids)

    def reset_faults(self) -> None:
        """Back to a healthy server: default configure(), no queued/outage/always/rejects."""
        with self._lock:
            self._cfg = _Config()
            self._fail_queue.clear()
            self._outage_until = 0.0
            self._always = None
            self._reject = frozenset()

    # ---- request handling ------------------------------------------------------------------

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._open_conns.add(conn)
            self._connections += 1

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._open_conns.discard(conn)

    def _internal_error(self, exc: BaseException | None) -> None:
        with self._lock:
            self._errors.append(f"{type(exc).__name__}: {exc}")

    def _pick_fault(self, now: float) -> _Fault | None:
        """Deterministic faults first (always, outage, fail_next), then the random ones."""
        if self._always is not None:
            return _Fault("always", self._always)
        if now < self._outage_until:
            return _Fault("outage", self._outage_status)
        if self._fail_queue:
            entry = self._fail_queue[0]
            entry[0] -= 1
            if entry[0] <= 0:
                self._fail_queue.popleft()
            return _Fault("fail_next", entry[1], entry[2])
        cfg = self._cfg
        if cfg.p_drop or cfg.p_5xx or cfg.p_429:
            u = self._rng.random()
            if u < cfg.p_drop:
                return _Fault("p_drop", self.DROP)
            if u < cfg.p_drop + cfg.p_5xx:
                return _Fault("p_5xx", self._rng.choice(FIVE_XX))
            if u < cfg.p_drop + cfg.p_5xx + cfg.p_429:
                return _Fault("p_429", 429)
        return None

    def _rate_limit(self, now: float, events: int, rate: float) -> _Fault | None:
        """Take `events` from the bucket, or a 429 saying when they would fit (lock held).

        The bucket holds one second's worth of events; a request larger than that passes
        when the bucket is full, and leaves it in debt."""
        if self._tokens_at is not None:
            self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        needed = min(float(events), rate)
        if self._tokens >= needed:
            self._tokens -= events
            return None
        return _Fault("rate_limit", 429, (needed - self._tokens) / rate)

    def _check_retry_after(self, seq: int, arrival: float, auth: str) -> None:
        """Record a request that came while a Retry-After announced to its token was still
        running."""
        self._retry_windows = [w for w in self._retry_windows if w[2] > arrival]
        for origin, answered, not_before, given_to in self._retry_windows:
            if given_to != auth:
                continue
            if answered + RETRY_AFTER_SLACK_S < arrival < not_before - RETRY_AFTER_SLACK_S:
                self._ra_violations.append(
                    f"request #{seq} arrived {not_before - arrival:.3f} s before the "
                    f"Retry-After given to request #{origin} had passed"
                )
                return

    def _handle(self, h: _Handler) -> None:
        arrival = time.monotonic()
        split = urllib.parse.urlsplit(h.path)
        if split.path == STATS_PATH and h.command == "GET":
            self._read_body(h, limit=0)
            self._send(h, 200, json.dumps(self.stats(), sort_keys=True).encode())
            return
        with self._lock:
            cfg = self._cfg
            self._seq += 1
            seq = self._seq
            if self._first_arrival is None:
                self._first_arrival = arrival
            auth = h.headers.get("Authorization", "")
            self._check_retry_after(seq, arrival, auth)
        try:
            body, size = self._read_body(h, limit=cfg.max_body_bytes)
        except _DropConnection:
            self._drop(h)
            return

        fault: _Fault | None = None
        if split.path != EVENTS_PATH:
            outcome = _Outcome(404, ["no such endpoint"], "NOT_FOUND")
            outcome.violations.append(f"path is not {EVENTS_PATH}")
        else:
            outcome = self._check_request(h, split.query, body, size, cfg)
            with self._lock:
                fault = self._pick_fault(arrival)
                if fault is None and 200 <= outcome.status < 300 and cfg.events_per_second:
                    fault = self._rate_limit(arrival, len(outcome.event_ids), cfg.events_per_second)
            outcome = self._apply_fault(outcome, fault, cfg)

        if cfg.latency:
            time.sleep(cfg.latency)
        dropped = outcome.status == self.DROP
        retry_after = self._retry_after_for(outcome, fault, cfg)
        with self._lock:
            now = time.monotonic()
            record = RequestRecord(
                arrival=arrival,
                status=None if dropped else outcome.status,
                event_ids=[] if self.count_only else list(outcome.event_ids),
                body_size=size,
                fault=outcome.fault,
                method=h.command,
                path=split.path,
                n_events=len(outcome.event_ids),
                seq=seq,
                answered=now,
                retry_after=retry_after,
                connection_id=outcome.connection_id,
            )
            self._requests.append(record)
            self._bytes_received += size
            self._events_received += len(outcome.event_ids)
            if outcome.fault:
                self._faults[outcome.fault] += 1
            self._violations += [
                f"request #{seq} ({record.status}): {v}" for v in outcome.violations
            ]
            if dropped:
                self._dropped += 1
            else:
                self._statuses[outcome.status] += 1
            if outcome.status == 400:
                self._note_refused(outcome, seq)
            if 200 <= outcome.status < 300:
                self._accepted_count += len(outcome.event_ids)
                self._ids.update(outcome.event_ids)
                if outcome.connection_id is not None:
                    self._ids_by_connection[outcome.connection_id].update(outcome.event_ids)
                if not self.count_only:
                    for event in outcome.events:
                        self._accepted[event["event_id"]] = event
            self._last_answer = now
            if retry_after is not None and retry_after > 0:
                self._retry_windows.append((seq, now, now + retry_after, auth))
        if dropped:
            self._drop(h)
            return
        if 200 <= outcome.status < 300:
            payload: dict[str, Any] = {"message": "SUCCESS"}
        else:
            payload = {
                "sp_trace_id": str(uuid.uuid4()),
                "messages": outcome.messages,
                "error_codes": [outcome.error_code or _error_code(outcome.status)],
            }
        extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._send(h, outcome.status, json.dumps(payload).encode(), extra)

    def _note_refused(self, outcome: _Outcome, seq: int) -> None:
        """Count the events a 400 refused, once each per reason (a client that splits a
        refused request to find the bad event sends that event several times)."""
        events = outcome.events
        for message in outcome.messages:
            index, reason = refusal_reason(message)
            if index is None:
                ids = set(outcome.event_ids) or {f"request #{seq}"}
            else:
                event = events[index] if index < len(events) else None
                event_id = event.get("event_id") if isinstance(event, dict) else None
                ids = {event_id if isinstance(event_id, str) else f"request #{seq} [{index}]"}
            self._refused[reason] |= ids

    def _check_request(
        self, h: _Handler, query: str, body: bytes | None, size: int, cfg: _Config
    ) -> _Outcome:
        """The contract, in the order a real server would look: auth, transport, size,
        body and events (every breach reported at once), connection, count, then the API's
        own refusals."""
        auth = h.headers.get("Authorization", "")
        scheme, _, credential = auth.partition(" ")
        expected = self.credentials.get(credential) if scheme.lower() == "bearer" else None
        if expected is None:
            return _Outcome(401, ["missing or invalid bearer token"], "UNAUTHENTICATED")
        violations: list[str] = []
        if h.command != "POST":
            violations.append("method is not POST")
        if query:
            violations.append("query string present")
        media, *params = (h.headers.get("Content-Type") or "").split(";")
        params_ok = all(p.strip().lower() in ("charset=utf-8", 'charset="utf-8"') for p in params)
        if media.strip().lower() != "application/json" or not params_ok:
            violations.append("Content-Type is not application/json")
        if h.headers.get("Content-Encoding", "identity").lower() != "identity":
            violations.append("Content-Encoding is not supported")
        if body is None:  # over max_body_bytes
            if violations:
                return _Outcome(400, violations, "INVALID_ARGUMENT", violations)
            return _Outcome(413, ["request body too large"], "PAYLOAD_TOO_LARGE")
        found = count_body(body) if self.count_only and not violations else None
        if found is None:
            parsed = self._parse_json(body, violations)
            if parsed is _INVALID:
                return _Outcome(400, violations, "INVALID_ARGUMENT", violations)
            found = check_body(parsed, per_event=not self.count_only)
        violations += found.violations
        if violations:
            return _Outcome(
                400,
                violations,
                "INVALID_ARGUMENT",
                violations,
                events=found.events,
                event_ids=found.event_ids,
            )
        assert found.connection_id is not None  # no violations means a UUID was there
        if found.connection_id.lower() != expected.lower():
            return _Outcome(
                403,
                ["capi_connection_id does not belong to this token's business"],
                "PERMISSION_DENIED",
                event_ids=found.event_ids,
            )
        if cfg.max_events is not None and len(found.events) > cfg.max_events:
            return _Outcome(
                413,
                ["too many events in one request"],
                "PAYLOAD_TOO_LARGE",
                event_ids=found.event_ids,
            )
        with self._lock:
            reject = self._reject
        if reject:
            bad = [i for i, event in enumerate(found.events) if event["event_id"] in reject]
            if bad:
                return _Outcome(
                    400,
                    [f"events[{i}]: event refused" for i in bad],
                    "INVALID_ARGUMENT",
                    events=found.events,
                    event_ids=found.event_ids,
                    fault="reject_events",
                )
        return _Outcome(
            200,
            event_ids=found.event_ids,
            events=found.events,
            connection_id=found.connection_id.lower(),
        )

    def _parse_json(self, body: bytes, violations: list[str]) -> Any:
        """Strict JSON: UTF-8, no NaN/Infinity, and (outside count_only) no duplicate keys."""

        def no_constants(name: str) -> Any:
            raise ValueError("non-standard JSON constant")

        duplicates: list[bool] = []

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            result = dict(items)
            if len(result) != len(items):
                duplicates.append(True)
            return result

        try:
            text = body.decode("utf-8")
            if self.count_only:
                parsed = json.loads(text, parse_constant=no_constants)
            else:
                parsed = json.loads(text, parse_constant=no_constants, object_pairs_hook=pairs)
        except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
            violations.append("body is not UTF-8 JSON")
            return _INVALID
        if duplicates:
            violations.append("body has a JSON object with a duplicate key")
        return parsed

    def _apply_fault(self, outcome: _Outcome, fault: _Fault | None, cfg: _Config) -> _Outcome:
        """A fault overrides the answer but keeps the violations found (they are still bugs).

        A 2xx fault only changes the status of a request that would have been accepted.
        """
        if fault is None:
            return outcome
        if 200 <= fault.status < 300:
            if 200 <= outcome.status < 300:
                outcome.status = fault.status
                outcome.fault = fault.name
            return outcome
        messages = {
            0: [],
            429: ["rate limit exceeded"],
        }.get(fault.status, [f"injected {fault.name} failure"])
        return _Outcome(
            fault.status,
            messages,
            _error_code(fault.status),
            outcome.violations,
            event_ids=outcome.event_ids,
            fault=fault.name,
            connection_id=outcome.connection_id,
        )

    @staticmethod
    def _retry_after_for(outcome: _Outcome, fault: _Fault | None, cfg: _Config) -> int | None:
        """Seconds to announce: the fault's own value, else configure's for a 429.

        Retry-After is delay-seconds, an integer, so a fractional setting is rounded up.
        """
        if outcome.fault is None or fault is None or outcome.status == 0:
            return None
        seconds = fault.retry_after
        if seconds is None and outcome.status == 429:
            seconds = cfg.retry_after
        return None if seconds is None else max(0, math.ceil(seconds))

    def _read_body(self, h: _Handler, limit: int | None) -> tuple[bytes | None, int]:
        """Read the whole body (keep-alive needs it) but keep it only up to `limit` bytes."""
        rfile = h.rfile
        if (h.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            parts: list[bytes] = []
            size = 0
            while True:
                line = rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise _DropConnection
                try:
                    chunk = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _DropConnection from None
                if chunk == 0:
                    while rfile.readline(8192).strip():  # trailers
                        pass
                    break
                data = rfile.read(chunk)
                rfile.readline(8)
                if len(data) < chunk:
                    raise _DropConnection
                size += chunk
                if limit is None or size <= limit:
                    parts.append(data)
            if limit is not None and size > limit:
                return None, size
            return b"".join(parts), size
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            raise _DropConnection from None
        if length < 0:
            raise _DropConnection
        if limit is not None and length > limit:
            left = length
            while left > 0:
                got = rfile.read(min(left, 1 << 16))
                if not got:
                    raise _DropConnection
                left -= len(got)
            return None, length
        data = rfile.read(length)
        if len(data) < length:
            raise _DropConnection
        return data, length

    @staticmethod
    def _drop(h: _Handler) -> None:
        """Close without answering: the client sees its connection end (RemoteDisconnected)."""
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _send(h: _Handler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(body)
            h.wfile.flush()
        except OSError:  # the client went away (for instance it timed out during latency)
            h.close_connection = True


_INVALID = object()


def _error_code(status: int) -> str:
    return {
        0: "DROPPED",
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        408: "REQUEST_TIMEOUT",
        413: "PAYLOAD_TOO_LARGE",
        429: "RESOURCE_EXHAUSTED",
    }.get(status, "UNAVAILABLE" if status >= 500 else "ERROR")


# --------------------------------------------------------------------------------------------
# Stand-alone process
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; print `URL <url>` first and one JSON stats line last."""
    parser = argparse.ArgumentParser(prog="spotify-capi-sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--connection-id", default="3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01")
    parser.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="TOKEN=CONNECTION_ID",
        help="one more token and connection pair accepted (repeatable)",
    )
    parser.add_argument(
        "--count-only",
        action="store_true",
        help="keep event ids only, not each accepted event (over a kilobyte each), and check "
        "each request's envelope and ids only, not each event: for rehearsals of millions of "
        "events whose contract a smaller rehearsal checked",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--p-5xx", type=float, default=0.0)
    parser.add_argument("--p-429", type=float, default=0.0)
    parser.add_argument("--p-drop", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--max-events", type=int, default=None)
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000)
    parser.add_argument("--events-per-second", type=float, default=None)
    parser.add_argument("--refuse-for", type=float, default=0.0)
    args = parser.parse_args(argv)
    pairs = [pair.rpartition("=") for pair in args.credential]
    if any(not token or not sep for token, sep, _ in pairs):
        parser.error("--credential takes TOKEN=CONNECTION_ID")
    if not all(_UUID.fullmatch(cid) for cid in [args.connection_id, *(c for _, _, c in pairs)]):
        parser.error("a connection id must be a UUID, as the real API's are")

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake = FakeSpotify(
        token=args.token,
        connection_id=args.connection_id,
        count_only=args.count_only,
        seed=args.seed,
        port=args.port,
        credentials={token: cid for token, _, cid in pairs},
        refuse_for=args.refuse_for,
    )
    fake.configure(
        p_5xx=args.p_5xx,
        p_429=args.p_429,
        p_drop=args.p_drop,
        retry_after=args.retry_after,
        latency=args.latency,
        max_events=args.max_events,
        max_body_bytes=args.max_body_bytes,
        events_per_second=args.events_per_second,
    )
    fake.start()
    print(f"URL {fake.url}", flush=True)
    while not stop.wait(0.2):
        pass
    fake.stop()
    print(json.dumps(fake.stats(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
