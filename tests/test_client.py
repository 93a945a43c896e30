"""The HTTP client against the strict fake: what is retried, what is final, what is fatal."""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
import requests

from target_spotify_conversions.client import (
    Aborted,
    AuthError,
    CapiClient,
    DeliveryError,
    api_message,
    retry_after,
)
from target_spotify_conversions.concurrency import ConcurrencyLimit
from target_spotify_conversions.sandbox import FakeSpotify
from target_spotify_conversions.transport import body_of
from tests.harness import CONNECTION_ID, TOKEN, wait_until

EVENT = json.dumps({
    "event_name": "VIEW", "event_id": "e-1", "event_time": "2026-01-01T00:00:00.000Z",
    "user_data": {"ip_address": "203.0.113.1"}, "opt_out_targeting": True,
}).encode()


def client(fake: FakeSpotify, **options) -> CapiClient:
    options.setdefault("backoff_factor", 0.05)
    return CapiClient(fake.url, TOKEN, **options)


def test_a_valid_body_is_delivered(fake):
    answer = client(fake).post(body_of(CONNECTION_ID, [EVENT]), 1)
    assert answer.ok
    assert fake.accepted_ids() == {"e-1"}


def test_transient_answers_are_retried_with_the_identical_body(fake):
    fake.fail_next(1, 503)
    fake.fail_next(1, 429, retry_after=0.3)
    fake.fail_next(1, FakeSpotify.DROP)
    capi = client(fake)
    answer = capi.post(body_of(CONNECTION_ID, [EVENT]), 1)
    assert answer.ok
    assert capi.counts.retries == 3
    sizes = {request.body_size for request in fake.requests}
    assert len(sizes) == 1, "every attempt sent the same bytes"
    assert fake.retry_after_violations == []


def test_retries_run_out_with_a_message_that_says_so(fake):
    fake.always(502)
    with pytest.raises(DeliveryError, match=r"after 3 attempts; last answer: HTTP 502"):
        client(fake, max_retries=2).post(body_of(CONNECTION_ID, [EVENT]), 1)
    assert len(fake.requests) == 3


def test_retry_after_holds_back_every_thread(fake):
    fake.fail_next(1, 429, retry_after=1.0)
    capi = client(fake)
    first = threading.Thread(target=capi.post, args=(body_of(CONNECTION_ID, [EVENT]), 1))
    first.start()
    # The client counts a retry once it has read the 429 and its Retry-After.
    wait_until(lambda: capi.counts.retries == 1, "the first thread to be told 429")
    [told] = fake.requests
    assert (told.status, told.retry_after) == (429, 1)
    window_ends = told.answered + told.retry_after
    asked = time.monotonic()
    capi.post(body_of(CONNECTION_ID, [EVENT]), 1)  # another thread, never told 429 itself
    first.join(timeout=10)
    assert not first.is_alive()
    assert asked < window_ends, "the second request was asked for while the window ran"
    later = fake.requests[1:]
    assert len(later) == 2, "the first thread's retry and the second thread's request"
    assert all(request.arrival >= window_ends for request in later), [
        round(request.arrival - window_ends, 3) for request in later
    ]
    assert fake.accepted_count == 2
    assert fake.retry_after_violations == []


@pytest.mark.parametrize(("status", "cause"), [(401, "auth_token"), (403, "capi_connection_id")])
def test_credentials_errors_are_fatal_and_name_the_cause(fake, status, cause):
    fake.always(status)
    with pytest.raises(AuthError, match=cause):
        client(fake).post(body_of(CONNECTION_ID, [EVENT]), 1)
    assert len(fake.requests) == 1


def test_400_and_413_are_answers_for_the_caller_to_split(fake):
    fake.reject_events({"e-1"})
    answer = client(fake).post(body_of(CONNECTION_ID, [EVENT]), 1)
    assert answer.status == 400
    assert "sp_trace_id" in answer.message


def test_a_redirect_is_not_followed(tmp_path):
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(308)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/capi-direct/events/"
        with pytest.raises(DeliveryError, match="308 redirect"):
            CapiClient(url, TOKEN).post(b"{}", 1)
        # a token pasted into api_url's query is not repeated by the message
        with pytest.raises(DeliveryError, match="308 redirect") as failure:
            CapiClient(url + "?access_token=tok3n-in-the-url", TOKEN).post(b"{}", 1)
        assert "tok3n-in-the-url" not in str(failure.value)
    finally:
        server.shutdown()


def test_abort_stops_a_request_waiting_to_retry(fake):
    fake.always(503)
    capi = client(fake, backoff_factor=30)
    errors = []

    def post():
        try:
            capi.post(body_of(CONNECTION_ID, [EVENT]), 1)
        except DeliveryError as exc:
            errors.append(exc)

    worker = threading.Thread(target=post)
    worker.start()
    wait_until(lambda: capi.counts.retries >= 1, "the request to be told 503 and wait to retry")
    capi.abort()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], Aborted)


def response(status: int, body: str, **headers: str) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body.encode()
    answer.headers.update(headers)
    return answer


def test_retry_after_reads_seconds_and_http_dates_and_caps_them():
    assert retry_after(response(429, "", **{"Retry-After": "7"})) == 7
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after(response(429, "", **{"Retry-After": soon})) or 0) <= 31
    assert retry_after(response(429, "", **{"Retry-After": "86400"})) == 600
    assert retry_after(response(429, "", **{"Retry-After": "soon"})) is None
    assert retry_after(response(429, "")) is None


def test_api_message_keeps_the_api_words_and_trace_id_short():
    body = json.dumps({"sp_trace_id": "abc123", "messages": ["bad event_time"], "error_codes": [1]})
    assert api_message(body) == "bad event_time (sp_trace_id abc123)"
    assert api_message("<html>" + "x" * 5000) == ("<html>" + "x" * 294)


# --- the environment: read once per session, still honoured -----------------------------------


class _Proxy(threading.Thread):
    """A forward proxy that answers every request itself and remembers its first line."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        import socket

        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.request_lines: list[str] = []
        self.start()

    def run(self) -> None:
        while True:
            connection, _ = self.server.accept()
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(
                    line.split(b":")[1] for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ))
                while len(body) < length:
                    body += connection.recv(65536)
                self.request_lines.append(head.split(b"\r\n")[0].decode())
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                   b"Connection: close\r\n\r\n{}")


def test_a_proxy_from_the_environment_is_used(monkeypatch):
    proxy = _Proxy()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    capi = CapiClient("http://capi.example.invalid/capi-direct/events/", TOKEN)
    for _ in range(2):  # the second request reuses the session built by the first
        assert capi.post(body_of(CONNECTION_ID, [EVENT]), 1).ok
    line = "POST http://capi.example.invalid/capi-direct/events/ HTTP/1.1"
    assert proxy.request_lines == [line, line]


def test_debug_lines_through_a_proxy_name_the_url_without_its_query(monkeypatch, caplog):
    """Through a proxy urllib3's DEBUG request line holds the whole URL, query included."""
    proxy = _Proxy()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    capi = CapiClient("http://capi.example.invalid/capi-direct/events/?key=k3y-in-url", TOKEN)
    with caplog.at_level(logging.DEBUG):
        assert capi.post(body_of(CONNECTION_ID, [EVENT]), 1).ok
    assert proxy.request_lines[0].endswith("?key=k3y-in-url HTTP/1.1")  # sent as it was
    assert "k3y-in-url" not in caplog.text
    assert TOKEN not in caplog.text
    assert '"POST http://capi.example.invalid/capi-direct/events/?(query not shown)' in caplog.text


def test_a_netrc_entry_does_not_replace_the_bearer_token(fake, monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert client(fake).post(body_of(CONNECTION_ID, [EVENT]), 1).ok  # the fake checks the token
    assert fake.accepted_ids() == {"e-1"}


def _shown_for(status: int, answer: Callable[[Any], bytes], tail: str = "/") -> str:
    """What the client shows of an answer of `status` whose body a server builds from the
    request (its handler), from a message or an error."""
    import http.server

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = answer(self)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = CapiClient(f"http://127.0.0.1:{server.server_port}{tail}", TOKEN, max_retries=0)
    try:
        return client.post(body_of(CONNECTION_ID, [EVENT]), 1).message
    except DeliveryError as exc:
        return str(exc)
    finally:
        client.close()
        server.shutdown()


@pytest.mark.parametrize("escaped", [False, True])  # JSON may write a letter as \u0074
@pytest.mark.parametrize("status", [200, 400, 401, 403, 404])
def test_an_answer_that_echoes_the_token_never_shows_it(status, escaped):
    """A proxy or a wrong endpoint may echo the request's headers in its error page."""

    def echo(request: Any) -> bytes:
        body = json.dumps({"message": f"you sent {request.headers['Authorization']}"}).encode()
        if escaped:  # the token's first letter as a JSON escape
            body = body.replace(TOKEN.encode(), b"\\u%04x" % ord(TOKEN[0]) + TOKEN[1:].encode())
        return body

    shown = _shown_for(status, echo)
    assert TOKEN not in shown
    assert "[auth_token]" in shown


@pytest.mark.parametrize("status", [200, 404, 302])
def test_a_query_in_api_url_is_never_shown_even_when_the_answer_echoes_it(status):
    """A gateway may take a key in the query (`?code=...`); a wrong endpoint's error page may
    echo the request line."""
    shown = _shown_for(
        status,
        lambda request: json.dumps({"message": f"Cannot POST {request.path}"}).encode(),
        "/gw/?code=QQ111&access_token=S%2FECRET%3D2",
    )
    assert ("redirect from" if status == 302 else "Cannot POST /gw/") in shown
    for secret in ("QQ111", "S%2FECRET%3D2", "S/ECRET=2"):
        assert secret not in shown


PATH_KEY = "sk_live_9f8e7d6c5b4a3f2e1d0c"


@pytest.mark.parametrize("status", [200, 404, 302])
def test_a_key_in_api_urls_path_is_never_shown_even_when_the_answer_echoes_it(status, caplog):
    """A relay may take its key as a path segment (`/hooks/<key>/`): its messages, urllib3's
    DEBUG request lines, and an error page that echoes the request line show the rest of the
    path, that segment not."""
    with caplog.at_level(logging.DEBUG):
        shown = _shown_for(
            status,
            lambda request: json.dumps({"message": f"Cannot POST {request.path}"}).encode(),
            f"/hooks/{PATH_KEY}/events",
        )
    expected = {200: "Cannot POST /hooks/(not shown)/events", 302: "redirect from http://",
                404: "/hooks/(not shown)/events"}
    assert expected[status] in shown
    assert "9f8e7d6c5b4a3f2e1d0c" not in shown
    assert "9f8e7d6c5b4a3f2e1d0c" not in caplog.text
    assert '"POST /hooks/(not shown)/events HTTP/1.1"' in caplog.text


@pytest.mark.parametrize("tail", [
    "/hooks/k7Qz9xW2pL4vN8aa%2b%3d/events",  # escapes in lower case: sent in upper case
    "/hooks/k7Qz9xW2pL4vN8aa|z^/events",  # characters requests escapes
    "/hooks/ab%2fk7Qz9xW2pL4vN8aa/events",
    "/gw/?code=Zk9q2%2bWm7%3d",
    "/gw/?code=Zk9q2|Wm7^",
])
@pytest.mark.parametrize("status", [200, 400, 404])
def test_a_key_in_api_url_is_hidden_in_the_spelling_the_server_echoes(tail, status):
    """Found by an attack: an answer echoes the request line as it was sent, and requests
    spells some of it otherwise than api_url does (`%2B` for `%2b`, `%7C` for `|`)."""
    shown = _shown_for(
        status,
        lambda request: json.dumps({"message": f"Cannot POST {request.path}"}).encode(),
        tail,
    )
    for key in ("k7Qz9xW2pL4vN8", "Zk9q2"):
        assert key not in shown


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


ECHOES = {  # how a server may spell back the request target it received
    "lower_escapes": _lower_escapes,
    "twice_escaped": lambda path: urllib.parse.quote(path, safe=""),
    "plus_for_space": lambda path: urllib.parse.unquote(path).replace(" ", "+"),
    "space_for_plus": lambda path: urllib.parse.unquote_plus(path),
    "latin1_read": lambda path: urllib.parse.unquote(path).encode().decode("latin-1"),
    "split_apart": lambda path: " ".join(re.split(r"%2F|%3B|[/;]", path, flags=re.I)),
    "html_entities": lambda path: path.replace("%2F", "&#x2F;"),
}


@pytest.mark.parametrize("tail", [
    "/hooks/k7Qz%2b9xW2pL4vN8aa/events",
    "/hooks/k7Qz%2F9xW2pL4vN8aa/events",
    "/hooks/k7Qz%C3%A99xW2pL4vN8aa/events",
    "/hooks/k7Qz%209xW2pL4vN8aa/events",
    "/hooks;k=k7Qz9xW2pL4vN8aa/events",
    "/events?k7Qz9xW2pL4vN8aa",  # a query item without `=`
    "/events?key=k7Qz+9xW2pL4vN8aa",
])
@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_a_key_in_api_url_is_hidden_in_whatever_spelling_an_answer_gives_it(tail, echo):
    """Found by a second attack: servers spell back what they received in other ways too."""
    shown = _shown_for(
        400,
        lambda request: json.dumps({"message": f"Cannot POST {ECHOES[echo](request.path)}"})
        .encode(),
        tail,
    )
    assert "9xW2pL4vN8aa".lower() not in shown.lower()


def test_an_answer_that_quotes_no_key_is_shown_as_it_is():
    shown = _shown_for(400, lambda request: b'{"message": "invalid event_time on event 3"}',
                       "/hooks/k7Qz9xW2pL4vN8aa/events?k=abcdefgh12345678")
    assert "invalid event_time on event 3" in shown


def test_the_path_of_spotifys_own_url_is_shown_as_it_is():
    shown = _shown_for(404, lambda request: b"{}", "/capi-direct/events/")
    assert "/capi-direct/events/: " in shown


def _busy(capi: CapiClient, threads: int, until: threading.Event) -> list[threading.Thread]:
    """`threads` request threads posting one body after another until `until` is set."""

    def keep_posting() -> None:
        while not until.is_set():
            capi.post(body_of(CONNECTION_ID, [EVENT]), 1)

    started = [threading.Thread(target=keep_posting, daemon=True) for _ in range(threads)]
    for thread in started:
        thread.start()
    return started


def _most_at_once(fake: FakeSpotify) -> int:
    """The most requests the fake was answering at one time."""
    edges = sorted([(r.arrival, 1) for r in fake.requests] + [(r.answered, -1)
                                                                for r in fake.requests])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_requests_in_flight_grow_past_four_when_answers_are_slow(fake):
    fake.configure(latency=0.2)
    capi = client(fake, limit=ConcurrencyLimit(32, start=4))
    done = threading.Event()
    threads = _busy(capi, 32, done)
    wait_until(lambda: capi.limit.limit >= 16, "the limit to grow", timeout=20)
    done.set()
    for thread in threads:
        thread.join(timeout=10)
    assert _most_at_once(fake) > 8, "the fake answered more than twice the old fixed 4 at once"
    flight = capi.counts.in_flight()
    assert flight is not None
    assert flight["max"] > 8
    assert flight["limit_min"] == 4
    assert flight["limit_max"] >= 16
    latency = capi.counts.latency()
    assert latency is not None
    assert 0.2 <= latency["median"] <= latency["p95"]


def test_requests_in_flight_shrink_at_once_after_a_429(fake):
    # 0.3 s answers: a busy machine's hiccups (tens of ms) stay far below a rising latency
    # (twice the lowest plus 0.1 s). At 0.1 s, one cut the limit to 24 (CUT_ON_LATENCY) just
    # before the 429, whose request, sent under the old limit, then rightly cut nothing more.
    fake.configure(latency=0.3)
    capi = client(fake, limit=ConcurrencyLimit(32, start=4))
    done = threading.Event()
    threads = _busy(capi, 32, done)
    wait_until(lambda: capi.limit.limit == 32, "the limit to reach its cap", timeout=20)
    fake.fail_next(1, 429, retry_after=1)
    wait_until(lambda: capi.counts.throttled == 1, "a request to be told 429")
    assert capi.limit.limit <= 16, "halved when the 429 came"
    time.sleep(0.3)  # the window of the Retry-After: nothing is sent
    assert capi.limit.limit <= 16
    done.set()
    for thread in threads:
        thread.join(timeout=10)
    assert fake.retry_after_violations == []


def test_a_fixed_number_in_flight_stays_fixed(fake):
    fake.configure(latency=0.1)
    capi = client(fake, limit=ConcurrencyLimit(3, adaptive=False))
    done = threading.Event()
    threads = _busy(capi, 12, done)
    wait_until(lambda: len(fake.requests) >= 40, "forty requests")
    done.set()
    for thread in threads:
        thread.join(timeout=10)
    assert _most_at_once(fake) == 3
    flight = capi.counts.in_flight()
    assert flight is not None
    assert (flight["max"], flight["limit_min"], flight["limit_max"]) == (3, 3, 3)


def test_every_attempt_is_counted_once_across_threads(fake):
    fake.configure(p_5xx=0.3)
    capi = client(fake, limit=ConcurrencyLimit(8))
    done = threading.Event()
    threads = _busy(capi, 8, done)
    wait_until(lambda: len(fake.requests) >= 200, "two hundred requests")
    done.set()
    for thread in threads:
        thread.join(timeout=10)
    answered_5xx = sum(1 for r in fake.requests if r.status and r.status >= 500)
    assert capi.counts.requests == len(fake.requests)
    assert capi.counts.retries == answered_5xx


def test_an_answer_cut_short_in_its_headers_is_not_taken_for_delivery(caplog):
    """`HTTP/1.1 200 OK` and half a header, then the connection closed: urllib3 only logs it,
    and the server may never have taken the events. Retried, then given up; urllib3's own
    warning (a traceback, and the URL with its query) is not logged."""
    import socketserver

    class Cut(socketserver.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nSer")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Cut)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = CapiClient(f"http://127.0.0.1:{server.server_address[1]}/?key=k3y-in-url", TOKEN,
                        max_retries=1, backoff_factor=0.01)
    try:
        with caplog.at_level(logging.INFO), \
                pytest.raises(DeliveryError, match="cut short in its headers"):
            client.post(body_of(CONNECTION_ID, [EVENT]), 1)
        assert client.counts.retries == 1
        assert "k3y-in-url" not in caplog.text
        assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"
    finally:
        client.close()
        server.shutdown()
        server.server_close()
