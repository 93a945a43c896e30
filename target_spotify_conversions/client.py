"""The HTTP side of delivery: POST one request body, retry what is transient, classify the rest.

No SDK here. One `requests.Session` per thread (sessions are not thread-safe), TLS always
verified, no redirects followed (a redirected POST is a wrong `api_url`, not something to chase).
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import itertools
import json
import logging
import math
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable

import requests
import urllib3
import urllib3.util.response
from requests.adapters import HTTPAdapter

from .concurrency import ConcurrencyLimit, Slot
from .privacy import showable_setting, shown_url
from .report import RequestCounts
from .retries import BACKOFF_FACTOR, DEFAULT_MAX_RETRIES, backoff_waits
from .transport import Answer, DeliveryError

logger = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Bytes of an answer read at most: Spotify's answers are a few hundred bytes; a proxy's error
# page, or a hostile server, may send gigabytes.
MAX_ANSWER_BYTES = 16_384
MAX_RETRY_AFTER = 600.0  # a server asking for more than 10 minutes is capped, and logged


class AuthError(DeliveryError):
    """401 or 403: nothing sent with these credentials will be accepted."""


class Aborted(DeliveryError):
    """Another request already failed the run; this one stopped waiting."""


class _Sockets:
    """The socket each request thread is using, so a watchdog can cut a request short.

    requests' `timeout` bounds each socket operation, not the exchange: a server that sends a
    byte a second would keep a request alive forever. Shutting the socket down from a timer
    ends any read or write at once, whatever phase the request is in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_thread: dict[int, object] = {}
        self._all_cut = False

    def track(self, sock: object) -> None:
        with self._lock:
            self._by_thread[threading.get_ident()] = sock
            late = self._all_cut  # connected after `cut()`: it must not get through either
        if late:
            _shut(sock)

    def cut(self, thread: int | None = None) -> None:
        """Shut down one thread's socket, or every socket in use and any connected later."""
        with self._lock:
            if thread is None:
                self._all_cut = True
            socks = (
                list(self._by_thread.values()) if thread is None else [self._by_thread.get(thread)]
            )
        for sock in socks:
            _shut(sock)


def _shut(sock: object) -> None:
    with contextlib.suppress(OSError, AttributeError):
        sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]


class _Watchdog:
    """One thread that cuts each request still running at its deadline (see _Sockets).

    A timer thread per request cost a thread start and its wake-ups for every POST. Deadlines
    share one timeout, so each new one is the latest: the watcher sleeps until the earliest,
    and is woken only when it had nothing to watch.
    """

    def __init__(self, cut: Callable[[int], None]) -> None:
        self._cut = cut
        self._changed = threading.Condition()
        self._armed: dict[int, tuple[float, int]] = {}  # deadline id -> (when, request thread)
        self._fired: set[int] = set()
        self._ids = itertools.count()
        self._sleeping_until = math.inf
        self._closed = False
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        """A deadline `seconds` from now for the calling thread's request; its id."""
        when = time.monotonic() + seconds
        with self._changed:
            deadline = next(self._ids)
            self._armed[deadline] = (when, threading.get_ident())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="capi-watchdog", daemon=True
                )
                self._thread.start()
            elif when < self._sleeping_until:
                self._changed.notify()
        return deadline

    def disarm(self, deadline: int) -> bool:
        """The request is over; whether its deadline had already cut it short."""
        with self._changed:
            self._armed.pop(deadline, None)
            if deadline in self._fired:
                self._fired.discard(deadline)
                return True
            return False

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                for deadline, (when, thread) in list(self._armed.items()):
                    if when <= now:
                        del self._armed[deadline]
                        self._fired.add(deadline)
                        self._cut(thread)
                self._sleeping_until = min(
                    (when for when, _ in self._armed.values()), default=math.inf
                )
                wait = None if self._sleeping_until == math.inf else self._sleeping_until - now
                self._changed.wait(wait)


def _tracked_adapter(sockets: _Sockets) -> HTTPAdapter:
    """An adapter whose connections report their socket when they connect."""

    class Connection(urllib3.connection.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            sockets.track(self.sock)

    class SecureConnection(urllib3.connection.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            sockets.track(self.sock)

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(urllib3.HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    adapter = HTTPAdapter(max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SecurePool}
    return adapter


class _Transient(Exception):
    def __init__(
        self, why: str, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(why)
        self.retry_after = retry_after
        self.status = status  # None: no answer (timeout, connection error)


class CapiClient:
    """Posts request bodies to the Conversions API from any number of threads."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        limit: ConcurrencyLimit | None = None,
        counts: RequestCounts | None = None,
    ) -> None:
        self.api_url = api_url
        self._token = token
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff_factor = backoff_factor
        self._local = threading.local()
        self._sessions: list[requests.Session] = []  # every thread's, to close at the end
        self._gate_lock = threading.Lock()
        self._not_before = 0.0  # monotonic time before which no request may start
        self._stop = threading.Event()
        # The run is failing (not just stopping): nothing may wait for a place in flight.
        self._failing = threading.Event()
        self._sockets = _Sockets()
        self._watchdog = _Watchdog(self._sockets.cut)
        parts = urllib.parse.urlsplit(api_url)
        self._where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        # The URL as messages name it; the query's values and key-like path segments an answer
        # that echoes the request line must not show either.
        self._shown_url = _without_query(api_url)
        # as written, and as sent (requests escapes some characters, urllib3 upper-cases
        # escapes): an answer echoes the spelling it received
        spellings = [parts, urllib.parse.urlsplit(_as_sent(api_url))]
        self._query_values = _longest_first(_query_values(url.query) for url in spellings)
        self._path_secrets = _longest_first(_secret_segments(url.path) for url in spellings)
        self._echo_marks = _echo_marks([*self._query_values, *self._path_secrets])
        # Requests in flight follow the API's answers (concurrency.py); counts go to the
        # run's report. Each client has its own limit: one per destination.
        self.limit = limit or ConcurrencyLimit(1_000_000, adaptive=False)
        self.counts = counts or RequestCounts()

    def abort(self) -> None:
        """Make every waiting or future request give up: no retry, no wait for a gate."""
        self._stop.set()

    def cut_in_flight(self) -> None:
        """End every request in flight at once: the run is failing, nothing more may arrive."""
        self._stop.set()
        self._failing.set()
        self._sockets.cut()

    def close(self) -> None:
        """Close every thread's connections (the request threads have ended)."""
        self._watchdog.close()
        with self._gate_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def post(self, body: bytes, event_count: int) -> Answer:
        """POST one body, retrying transient failures with exponential backoff (a floor under
        the jitter: see `backoff_waits`).

        Retry-After is honoured for every thread, not just the one that was told, because a
        rate limit applies to the whole connection.
        """
        delays = backoff_waits(self._max_retries, factor=self._backoff_factor)
        for attempt in range(self._max_retries + 1):
            self._wait_for_gate()
            try:
                return self._post_limited(body)
            except _Transient as exc:
                if self._failing.is_set():  # cut by a failing run: no failure of the API
                    raise Aborted("cut: the run is failing") from None
                if attempt == self._max_retries:
                    raise DeliveryError(
                        f"gave up on a request of {event_count} events after {attempt + 1} "
                        f"attempts; last answer: {exc}. Nothing after the last STATE was "
                        "checkpointed; a re-run resends with the same event ids."
                    ) from None
                wait = max(delays[attempt], exc.retry_after or 0.0)
                if exc.retry_after:
                    self._hold_all(exc.retry_after)
                self.counts.retried()
                logger.warning(
                    "Request of %d events: %s; retry %d of %d in %.1f s",
                    event_count,
                    exc,
                    attempt + 1,
                    self._max_retries,
                    wait,
                )
                if self._stop.wait(wait):
                    raise Aborted("stopped retrying: the run is failing") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_limited(self, body: bytes) -> Answer:
        """One attempt, once the limit on requests in flight lets it go; its answer (or its
        failure) teaches the limit and is counted."""
        # After a stop what was read is still sent, once: it waits for a place as before.
        slot = self.limit.acquire(self._failing)
        if slot is None:
            raise Aborted("stopped waiting: the run is failing")
        try:
            # A Retry-After may have come while this thread waited for its place: the place
            # was freed by the very answer that set it.
            self._wait_for_gate()
        except Aborted:
            self._answered(slot, None, ok=None)
            raise
        self.counts.sent(slot.in_flight, slot.limit)
        try:
            answer = self._post_once(body)
        except _Transient as exc:
            if exc.retry_after:  # before the place is freed: no waiting thread may slip by
                self._hold_all(exc.retry_after)
            self._answered(slot, exc.status, ok=False)
            raise
        except BaseException:
            self._answered(slot, None, ok=None)
            raise
        self._answered(slot, answer.status, ok=True)
        return answer

    def _answered(self, slot: Slot, status: int | None, *, ok: bool | None) -> None:
        seconds = self.limit.release(
            slot, ok=None if self._stop.is_set() else ok, rate_limited=status == 429
        )
        self.counts.answered(seconds, status)

    def _post_once(self, body: bytes) -> Answer:
        """One attempt, bounded as a whole by `request_timeout` (connect, send, full answer)."""
        deadline = self._watchdog.arm(self._timeout)
        try:
            try:
                session, template = self._session()
                request = template.copy()
                request.body = body
                request.headers["Content-Length"] = str(len(body))
                response = session.send(
                    request, timeout=self._timeout, allow_redirects=False, stream=True
                )
                with response:
                    text = _read_prefix(response)
            finally:
                cut_short = self._watchdog.disarm(deadline)
        except requests.exceptions.SSLError as exc:
            raise DeliveryError(_tls_failure(self._where, exc)) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if cut_short or isinstance(exc, requests.Timeout):
                raise _Transient(f"no answer within {self._timeout:g} s") from None
            raise _Transient(self._connection_problem(exc)) from None
        return self._classify(response, text)

    def _connection_problem(self, exc: Exception) -> str:
        """What went wrong and where, in words; never the body or the token."""
        kinds = (
            ("NameResolution", "name not resolved"),
            ("Name or service not known", "name not resolved"),
            ("Connection refused", "connection refused"),
            ("reset", "connection reset"),
            ("Connection aborted", "connection closed"),
            ("IncompleteRead", "answer cut short"),
            ("ChunkedEncoding", "answer cut short"),
            ("ProtocolError", "answer cut short"),
            ("Decod", "answer could not be decoded"),
            ("timed out", "timed out"),
        )
        text = f"{type(exc).__name__}: {exc}"
        kind = next((words for key, words in kinds if key in text), "connection error")
        return f"{kind} ({self._where}, {type(exc).__name__})"

    def _classify(self, response: requests.Response, text: str) -> Answer:
        status = response.status_code
        if 200 <= status < 300 and _cut_in_headers(response):
            raise _Transient(f"HTTP {status} cut short in its headers", None, status)
        # A server that echoes the request's headers must not make us print the token: as
        # sent, and once its JSON is read (an escaped letter would hide it from the first).
        message = self._hidden(api_message(self._hidden(text)))
        if 200 <= status < 300 or status in (400, 413):
            return Answer(status, message)
        if status in TRANSIENT_STATUSES or status >= 500:
            raise _Transient(f"HTTP {status}", retry_after(response), status)
        if status == 401:
            raise AuthError(
                f"HTTP 401 from the Conversions API: the auth_token is wrong, expired or revoked "
                f"(generate a new CAPI token in Ads Manager). {message}"
            )
        if status == 403:
            raise AuthError(
                "HTTP 403 from the Conversions API: the capi_connection_id is wrong, or the token "
                f"and the connection belong to different businesses. {message}"
            )
        if 300 <= status < 400:
            raise DeliveryError(
                f"HTTP {status} redirect from {self._shown_url}: check api_url (keep the "
                "trailing /)"
            )
        raise DeliveryError(
            f"HTTP {status} from {self._shown_url}: {message} (usually a wrong api_url)"
        )

    def _hidden(self, text: str) -> str:
        if self._token:
            text = text.replace(self._token, "[auth_token]")
        for value in self._query_values:
            text = text.replace(value, "[api_url query]")
        for segment in self._path_secrets:
            text = text.replace(segment, _HIDDEN_SEGMENT)
        if self._echo_marks and _echoes(text, self._echo_marks):  # in another spelling
            return "(the answer quotes api_url's query or a key in its path: not shown)"
        return text

    def _session(self) -> tuple[requests.Session, requests.PreparedRequest]:
        """This thread's session, and the request every POST copies: prepared once (URL,
        headers), because preparing it anew, merging session settings each time, cost about
        as much CPU as sending the body."""
        found: tuple[requests.Session, requests.PreparedRequest] | None = getattr(
            self._local, "session", None
        )
        if found is not None:
            return found
        session = requests.Session()
        adapter = _tracked_adapter(self._sockets)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        )
        # Proxies and CA bundle from the environment (HTTPS_PROXY, NO_PROXY,
        # REQUESTS_CA_BUNDLE, ...) are read once, not on every request: that lookup walks
        # the whole environment and cost more CPU than sending the body. trust_env off also
        # keeps a ~/.netrc entry from replacing the Bearer token.
        settings = session.merge_environment_settings(self.api_url, {}, None, None, None)
        session.proxies, session.verify = settings["proxies"], settings["verify"]
        session.trust_env = False
        template = session.prepare_request(requests.Request("POST", self.api_url, data=b"{}"))
        self._local.session = (session, template)
        with self._gate_lock:
            self._sessions.append(session)
        return session, template

    def _wait_for_gate(self) -> None:
        while True:
            with self._gate_lock:
                delay = self._not_before - time.monotonic()
            if delay <= 0:
                return
            if self._stop.wait(delay):
                raise Aborted("stopped waiting: the run is failing")

    def _hold_all(self, seconds: float) -> None:
        with self._gate_lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)


def retry_after(response: requests.Response) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), capped."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds > MAX_RETRY_AFTER:
        logger.warning("Retry-After of %.0f s capped to %.0f s", seconds, MAX_RETRY_AFTER)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class _Urllib3Lines(logging.Filter):
    """urllib3's log lines as the client's own messages would be: no query, no credentials.

    At DEBUG (`LOGLEVEL=DEBUG`, `meltano --log-level=debug`) urllib3 logs every request line,
    `"POST /capi-direct/events/?key=... HTTP/1.1" 200`, and its retries and redirects name the
    URL: a gateway's key in api_url's query would be in the log. Each URL it names is shown as
    `_without_query` shows api_url (the token and the body urllib3 never logs).

    An answer whose headers it cannot parse urllib3 logs with a traceback and the whole URL;
    the client judges such an answer itself (`_cut_in_headers`) and logs the retry in one line,
    so that line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Failed to parse headers"):
            return False
        if isinstance(record.args, tuple):
            record.args = tuple(
                _without_query(arg) if isinstance(arg, str) and _names_a_url(arg) else arg
                for arg in record.args
            )
        return True


# urllib3 2's loggers that name a URL (and 1's): a logger's filter sees only its own records.
for _name in (
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.util.retry",
):
    logging.getLogger(_name).addFilter(_Urllib3Lines())


def _names_a_url(text: str) -> bool:
    """A request target (`/path?query`), or a whole URL (through a proxy, a redirect's)."""
    return "?" in text or "://" in text or text.startswith("/")


def _without_query(url: str) -> str:
    """A URL as messages show it: no query (Spotify's has none; a gateway's may carry a key),
    no path segment that looks like a key (a relay's `/hooks/<key>/`), no user name or
    password (privacy.shown_url)."""
    before, _, after = url.partition("?")
    before = before.partition("#")[0]
    for segment in _secret_segments(before):
        before = before.replace(segment, _HIDDEN_SEGMENT)
    shown = shown_url(before)
    return shown + "?(query not shown)" if after.partition("#")[0] else shown


_HIDDEN_SEGMENT = "(not shown)"


def _secret_segments(url: str) -> list[str]:
    """The segments of a URL's path (after its host, if it names one) that a setting's value
    would not be shown as (privacy.showable_setting: long, or digits and letters mixed as in
    a key), as written and decoded, longest first."""
    path = url.split("://", 1)[1].partition("/")[2] if "://" in url else url
    hidden = set()
    for segment in path.split("/"):
        for form in (segment, urllib.parse.unquote(segment)):
            if not showable_setting(form):
                hidden.add(form)
    return sorted(hidden, key=len, reverse=True)


def _as_sent(url: str) -> str:
    """The URL as requests sends it (`%2b` as `%2B`, `|` as `%7C`)."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url or url


def _longest_first(groups: Iterable[list[str]]) -> list[str]:
    """Texts to hide, each once, longest first (one that holds another is hidden whole)."""
    return sorted({text for group in groups for text in group}, key=len, reverse=True)


def _query_values(query: str) -> list[str]:
    """The values in api_url's query (and its items without `=`: `?KEY`), as written and
    decoded, longest first (one that holds another is hidden whole); values under 3
    characters would hide ordinary words."""
    values = set()
    for pair in query.split("&"):
        name, equals, raw = pair.partition("=")
        raw = raw if equals else name
        values |= {raw, urllib.parse.unquote_plus(raw)}
    return sorted((value for value in values if len(value) >= 3), key=len, reverse=True)


# What an echoed secret is recognised by, whatever the spelling an answer gives it (escapes
# in either case or twice, `+` for a space, a character dropped or split off): runs of this
# many of its letters and digits, lower-cased. A key is random: an answer that does not
# quote it holds no such run.
_ECHO_RUN = 8


def _canonical(text: str) -> str:
    """Letters and digits only, lower-case, after undoing up to three layers of escapes."""
    for _ in range(3):
        text = urllib.parse.unquote_plus(html.unescape(text))
    return "".join(char for char in text.lower() if char.isascii() and char.isalnum())


def _echo_marks(secrets: Iterable[str]) -> frozenset[str]:
    marks = set()
    for secret in secrets:
        core = _canonical(secret)
        marks |= {core[i : i + _ECHO_RUN] for i in range(len(core) - _ECHO_RUN + 1)}
    return frozenset(marks)


def _echoes(text: str, marks: frozenset[str]) -> bool:
    core = _canonical(text)
    return any(core[i : i + _ECHO_RUN] in marks for i in range(len(core) - _ECHO_RUN + 1))


def _cut_in_headers(response: requests.Response) -> bool:
    """Whether the answer ended inside its headers (`HTTP/1.1 200 OK` and half a header, then
    the connection closed): urllib3 only logs that, and the 200 would count the events as
    delivered when the server may never have taken them. urllib3's own test, on the headers as
    http.client read them (what requests reads cookies from too)."""
    headers = getattr(getattr(response.raw, "_original_response", None), "msg", None)
    if headers is None:
        return False
    try:
        urllib3.util.response.assert_header_parsing(headers)
    except urllib3.exceptions.HeaderParsingError:
        return True
    return False


def _read_prefix(response: requests.Response) -> str:
    """At most MAX_ANSWER_BYTES of the answer, decoded; the rest is never read."""
    data = response.raw.read(MAX_ANSWER_BYTES, decode_content=True) or b""
    return data.decode(response.encoding or "utf-8", "replace")


def _tls_failure(where: str, exc: Exception) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in str(exc).lower():
        return (
            f"TLS certificate verification failed for {where}: the server's certificate is not "
            "trusted (self-signed, expired, or for another name). Behind a corporate proxy, point "
            "REQUESTS_CA_BUNDLE at its CA certificate file; TLS is never turned off"
        )
    return f"TLS handshake with {where} failed ({type(exc).__name__}); check api_url and proxies"


def api_message(text: str) -> str:
    """The API's own words, short, with its trace id for Spotify support."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:300].strip()
    if not isinstance(payload, dict):
        return str(payload)[:300]
    parts = payload.get("messages") or payload.get("message") or payload.get("error") or ""
    text = "; ".join(map(str, parts)) if isinstance(parts, list) else str(parts)
    trace = payload.get("sp_trace_id")
    return (text[:300] + (f" (sp_trace_id {trace})" if trace else "")).strip()
