"""Servers the strict fake cannot imitate: trickling, cutting answers short, bad certificates,
huge error bodies, refusing everything. Each run is the real CLI; every failure must be bounded
in time, clear, and leave no STATE past what was delivered."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest

from tests.harness import TOKEN, purchase, run_target, singer_lines, target_config

SUCCESS = b'{"message": "SUCCESS"}'


class RawServer(threading.Thread):
    """A one-connection-at-a-time HTTP server whose answers a test writes byte by byte."""

    def __init__(self, answer, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(daemon=True)
        self.answer = answer  # (server, connection, request number, body) -> None
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.tls = tls
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.events: list[str] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/capi-direct/events/"

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                conn.settimeout(60)
                while not self.stopped.is_set():
                    body = _read_request(conn)
                    if body is None:
                        return
                    with self.lock:
                        self.requests += 1
                        number = self.requests
                    if self.answer(self, conn, number, body) == "close":
                        return
        except OSError:
            return

    def accept_events(self, body: bytes) -> None:
        with self.lock:
            self.events += [e["event_id"] for e in json.loads(body)["conversion_events"]["events"]]

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return body


def ok(conn: socket.socket, body: bytes = SUCCESS) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.fixture
def server(request):
    made = []

    def make(answer, tls=None):
        made.append(RawServer(answer, tls))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def test_a_trickling_server_is_bounded_by_request_timeout(server, tmp_path):
    def trickle(srv, conn, number, body):
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n" + SUCCESS:
            if srv.stopped.is_set():
                return "close"
            conn.sendall(bytes([byte]))
            time.sleep(1)
        return "close"

    srv = server(trickle)
    config = target_config(srv.url, request_timeout=3, max_retries=1)
    started = time.monotonic()
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)], state_every=1),
                     timeout=60)
    elapsed = time.monotonic() - started
    assert run.returncode == 1
    assert elapsed < 25, elapsed
    assert "no answer within 3 s" in run.stderr
    assert run.states == []


def test_answers_cut_short_are_retried_with_the_same_events(server, tmp_path):
    def cut_three(srv, conn, number, body):
        if number <= 3:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + SUCCESS[:8])
            return "close"
        srv.accept_events(body)
        ok(conn)
        return None

    srv = server(cut_three)
    config = target_config(srv.url, max_retries=6, events_per_request=10,
                           max_concurrent_requests=1)
    run = run_target(tmp_path / "run", config,
                     singer_lines([purchase(i) for i in range(30)], state_every=10))
    assert run.returncode == 0, run.stderr[-2000:]
    assert set(srv.events) == {f"ord-{i}" for i in range(30)}
    assert "answer cut short" in run.stderr
    assert "Internal error" not in run.stderr
    assert run.states[-1] == {"position": 30}


def _self_signed(tmp_path) -> ssl.SSLContext:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_a_certificate_that_fails_verification_stops_the_run_at_once(server, tmp_path):
    def accept(srv, conn, number, body):
        srv.accept_events(body)
        ok(conn)

    srv = server(accept, tls=_self_signed(tmp_path))
    started = time.monotonic()
    run = run_target(tmp_path / "run", target_config(srv.url), singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert time.monotonic() - started < 10
    assert "certificate verification failed for 127.0.0.1:" in run.stderr
    assert "REQUESTS_CA_BUNDLE" in run.stderr
    assert "retry" not in run.stderr.lower()
    assert srv.events == []


def test_a_401_while_other_requests_hang_ends_the_run_within_seconds(server, tmp_path):
    def first_refused_rest_hang(srv, conn, number, body):
        if number == 1:
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}")
            return None
        srv.stopped.wait(120)
        return "close"

    srv = server(first_refused_rest_hang)
    config = target_config(srv.url, events_per_request=10, max_concurrent_requests=4)
    started = time.monotonic()
    run = run_target(tmp_path / "run", config,
                     singer_lines([purchase(i) for i in range(40)], state_every=10))
    assert run.returncode == 1
    assert time.monotonic() - started < 8
    assert "HTTP 401" in run.stderr
    assert run.states == []


def test_a_huge_error_body_is_not_read(server, tmp_path):
    sent = []

    def huge_500(srv, conn, number, body):
        size = 200_000_000
        conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: " + str(size).encode() + b"\r\n\r\n")
        chunk = b"x" * 65536
        total = 0
        try:
            while total < size and not srv.stopped.is_set():
                conn.sendall(chunk)
                total += len(chunk)
        except OSError:
            pass
        sent.append(total)
        return "close"

    srv = server(huge_500)
    config = target_config(srv.url, max_retries=0)
    started = time.monotonic()
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert time.monotonic() - started < 15
    assert "HTTP 500" in run.stderr
    srv.stop()
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent
    assert sent[0] < 50_000_000, sent  # the target stopped reading long before the end


def test_a_refused_connection_names_host_port_and_kind(tmp_path):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/capi-direct/events/"
    run = run_target(tmp_path / "run", target_config(url, max_retries=0),
                     singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert f"connection refused (127.0.0.1:{port}" in run.stderr
    assert TOKEN not in run.stderr


def test_an_api_that_refuses_everything_stops_the_run_without_state(server, tmp_path):
    def refuse(srv, conn, number, body):
        message = b'{"messages": ["schema changed"], "sp_trace_id": "t-1"}'
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: "
                     + str(len(message)).encode() + b"\r\n\r\n" + message)

    srv = server(refuse)
    lines = singer_lines([purchase(i) for i in range(5000)], state_every=100)
    run = run_target(tmp_path / "run", target_config(srv.url), lines, timeout=120)
    assert run.returncode == 1
    assert srv.requests <= 300, srv.requests
    refused = re.search(r"refused (\d+) events in a row", run.stderr)
    assert refused, run.stderr[-2000:]
    assert int(refused.group(1)) >= 25, run.stderr[-2000:]
    assert "schema changed" in run.stderr
    assert run.states == []
