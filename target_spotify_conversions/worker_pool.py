"""The mapping, run in child processes, so that it and the SDK's per-record work use every core.

One Python thread cannot read, validate and map more than about 15,000 records a second; the
mapping is the larger half and needs nothing from the SDK, so chunks of records go to a worker
process and come back as encoded events or rejection reasons, in order.

Two plain pipes, no helper threads and no pickling on the way: a process pool's feeder and
result threads took the GIL from the main thread hundreds of times a second, and pickling 500
records and their results cost more than mapping them. Records go as JSON, which is what a
Singer record is (decimals keep their digits; a datetime that a stream map made arrives as its
RFC 3339 string, and a float NaN, which no Singer line can carry, as null); a chunk holding a
value JSON cannot carry at all is pickled instead. Results come back as msgpack.

On the lean path a record arrives as the raw JSON of its input line (msgspec.Raw, embedded in
the chunk as it is): the worker decodes it and runs the stream's RecordChecks (sent ahead with
`add_stream`), which the SDK side runs for the others. A raw record that a full decoding
refuses spoils its chunk's decoding: the chunk is then decoded entry by entry, and that one
record comes back `unreadable`.

With `mapping_processes` workers, chunks go to them in turn and results are taken in the same
turn, so they come back in the order sent. A worker is a fresh interpreter that imports this
module, the mapping and the checks, and nothing of the SDK or the HTTP stack (see
MappingProcess). With none (one usable CPU, or Windows), chunks are mapped in the main
process, through the same encoding, so the events are byte for byte the same.

Neither side can block the other for good: the main thread writes without blocking and, when
the task pipe is full, reads results meanwhile (the worker may be waiting to hand one over).
Nor can a worker that stops answering (stopped, stalled, swapping) block the run: a worker that
sends nothing for `answer_timeout` seconds while it owes a result, or takes no chunk for as
long, is killed and the run ends naming it and what it was doing; once a stop is requested
(`hurry`) the wait is at most STOP_WAIT_SECONDS, and a worker that does not end when its task
pipe closes is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import time
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, Protocol

import msgspec

from .chunk_codec import ChunkMapper
from .mapping import MappingOptions
from .wire import (
    ANSWER_TIMEOUT,
    JSON_CHUNK,
    LINES_CHUNK,
    PICKLED_CHUNK,
    MappedRecord,
    StreamChecks,
)

# A chunk entry: (stream, record) for a record the SDK side has checked, (stream, raw, True) for
# a BATCH file's line left undecoded (msgspec.Raw; its depth bounded as it was read), which the
# worker decodes and checks, or (stream, line) for a whole RECORD line (bytes), which the
# worker reads as the reader would.
# A chunk of lines only goes as a LINES_CHUNK; lines among other entries (a lean stream read
# between others) go pickled: a line may not be JSON, so it cannot sit inside a JSON chunk.
Entry = tuple[str, Mapping[str, Any]] | tuple[str, msgspec.Raw, bool] | tuple[str, bytes]
Chunk = Sequence[Entry]

# A message: 8-byte length, 1-byte kind, payload.
_HEADER = struct.Struct("!Qc")
_STREAM, _RESULTS, _ERROR, _OPTIONS = b"S", b"R", b"E", b"O"
# Pipes hold this much (Linux; elsewhere the system's default), so a chunk or two fit in them.
PIPE_BYTES = 1 << 20

_JSON_ENCODER = msgspec.json.Encoder(decimal_format="number")  # chunks
# Once a stop is requested, the longest wait for a worker: the stop ends the run in about
# request_timeout plus this, whatever a worker does.
STOP_WAIT_SECONDS = 5.0
# A waiting loop wakes this often to see a stop request (a signal does not cut a select short).
_WAKE_SECONDS = 0.25


_RESULT_DECODER = msgspec.msgpack.Decoder(list[MappedRecord])
_LINES_ENCODER = msgspec.msgpack.Encoder()


class MappingProcessError(RuntimeError):
    """The worker failed or died; what it was mapping is lost, so the run must stop."""


class Workers(Protocol):
    """Where chunks are mapped: results come back by `take`, in the order chunks were submitted."""

    def submit(self, chunk: Chunk) -> None: ...

    def add_stream(self, checks: StreamChecks) -> None: ...

    def ready(self) -> bool: ...

    def take(self) -> list[MappedRecord]: ...

    def close(self, *, abandon: bool = False) -> None: ...

    def hurry(self) -> None: ...


def start_workers(
    options: MappingOptions, processes: int, answer_timeout: float = ANSWER_TIMEOUT
) -> Workers:
    """The run's mapping workers (they start in the background: the first chunk waits)."""
    if processes == 0:
        return InlineWorkers(options)
    return WorkerPool(
        [MappingProcess(options, number, answer_timeout) for number in range(1, processes + 1)]
    )


class InlineWorkers:
    """Maps in the calling process, through the same encoding as a worker's chunks."""

    def __init__(self, options: MappingOptions) -> None:
        self._mapper = ChunkMapper(options)
        self._results: deque[tuple[bytes, bytes]] = deque()

    def submit(self, chunk: Chunk) -> None:
        try:
            self._results.append((_RESULTS, self._mapper.map(*_encode_chunk(chunk))))
        except Exception as exc:  # the same clear stop as a worker's failure
            self._results.append((_ERROR, _describe(exc).encode()))

    def add_stream(self, checks: StreamChecks) -> None:
        self._mapper.add_stream(_JSON_ENCODER.encode(checks))

    def ready(self) -> bool:
        return bool(self._results)

    def take(self) -> list[MappedRecord]:
        return _decode_results(*self._results.popleft())

    def close(self, *, abandon: bool = False) -> None:
        self._results.clear()

    def hurry(self) -> None:
        """Nothing to hurry: a chunk is mapped within the call that submits it."""


class WorkerPool:
    """Worker processes served in turn: chunk n goes to worker n mod N, and is taken back so."""

    def __init__(self, processes: list[MappingProcess]) -> None:
        self._processes = processes
        self._next_in = 0
        self._next_out = 0
        self._out = 0  # chunks submitted and not taken

    def submit(self, chunk: Chunk) -> None:
        self._processes[self._next_in].submit(chunk)
        self._next_in = (self._next_in + 1) % len(self._processes)
        self._out += 1

    def add_stream(self, checks: StreamChecks) -> None:
        for process in self._processes:
            process.add_stream(checks)

    def ready(self) -> bool:
        return self._out > 0 and self._processes[self._next_out].ready()

    def take(self) -> list[MappedRecord]:
        results = self._processes[self._next_out].take()
        self._next_out = (self._next_out + 1) % len(self._processes)
        self._out -= 1
        return results

    def close(self, *, abandon: bool = False) -> None:
        for process in self._processes:
            process.close(abandon=abandon)

    def hurry(self) -> None:
        for process in self._processes:
            process.hurry()


# The worker's command: signals first (the parent handles them: it drains, writes STATE, then
# closes the pipe), then the parent's import path, then the mapping and nothing of the SDK.
_WORKER_CODE = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "import json, sys; sys.path[:] = json.loads(sys.argv[3]); "
    "from target_spotify_conversions.worker_pool import worker_main; "
    "worker_main(int(sys.argv[1]), int(sys.argv[2]))"
)


class MappingProcess:
    """A worker process holding an EventMapper (and its caches) for the whole run.

    A fresh interpreter, not a fork: it imports the mapping only (about 25 MB, where a fork of
    the reading process carries the SDK and the HTTP stack, about 50 MB), forking a process
    that may already run threads is unsafe, and it starts in about 0.1 s, while the reading
    process reads its first chunk. Its session is its own: a Ctrl-C at a terminal reaches the
    reading process only, which drains the workers before it exits.
    """

    def __init__(
        self, options: MappingOptions, number: int = 1, answer_timeout: float = ANSWER_TIMEOUT
    ) -> None:
        self.number = number
        self._answer_timeout = answer_timeout
        self._stopping = False
        self._owed: deque[int] = deque()  # records in each chunk sent and not answered
        self._announced: list[bytes] = []  # streams not yet sent (see add_stream)
        self._announced_bytes = 0
        task_read, self._tasks = os.pipe()  # the parent's ends are not inherited (PEP 446)
        self._results, result_write = os.pipe()
        for fd in (self._tasks, result_write):
            _widen(fd)
        command = [sys.executable, "-I", "-c", _WORKER_CODE, str(task_read), str(result_write)]
        try:
            self._process = subprocess.Popen(  # noqa: S603 - this Python, our own code
                [*command, json.dumps(sys.path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # stderr is the run's: a worker's traceback shows
                pass_fds=(task_read, result_write),
                start_new_session=True,
            )
        except BaseException:
            os.close(self._tasks)
            os.close(self._results)
            raise
        finally:
            os.close(task_read)
            os.close(result_write)
        os.set_blocking(self._tasks, False)
        self._exit_code: int | None = None
        self._inbox = bytearray()  # bytes from the worker, not yet a whole message
        self._ready: deque[tuple[bytes, bytes]] = deque()  # whole messages, in order
        self._write(_frame(_OPTIONS, _JSON_ENCODER.encode(options)), "take the run's options")

    @property
    def pid(self) -> int:
        return self._process.pid

    def submit(self, chunk: Chunk) -> None:
        """Send (stream, record) pairs to the worker; `take` returns their results in order."""
        data = _frame(*_encode_chunk(chunk))
        if self._announced:  # in the same write: the streams first
            data, self._announced, self._announced_bytes = b"".join([*self._announced, data]), [], 0
        self._write(data, f"take a chunk of {len(chunk)} records")
        self._owed.append(len(chunk))

    def add_stream(self, checks: StreamChecks) -> None:
        """Chunks sent from now on may hold raw records of this stream (no answer comes). Sent
        with the next chunk: a run of thousands of streams then makes one write, not one each
        (a write wakes the worker: 0.5 ms a stream on a busy machine)."""
        self._announced.append(_frame(_STREAM, _JSON_ENCODER.encode(checks)))
        self._announced_bytes += len(self._announced[-1])
        if self._announced_bytes >= PIPE_BYTES:  # held in memory up to a pipe's worth
            data, self._announced, self._announced_bytes = b"".join(self._announced), [], 0
            self._write(data, "take streams' checks")

    def ready(self) -> bool:
        """Whether `take` would return without waiting."""
        if not self._ready:
            self._receive(timeout=0)
        return bool(self._ready)

    def take(self) -> list[MappedRecord]:
        """The results of the oldest chunk not yet taken; waits for them, as long as the worker
        keeps sending (see `_silent_too_long`)."""
        heard = time.monotonic()
        while not self._ready:
            if self._receive(timeout=_WAKE_SECONDS):
                heard = time.monotonic()
            elif self._silent_too_long(heard):
                records = self._owed[0] if self._owed else 0
                raise self._stuck(f"did not answer while mapping a chunk of {records} records")
        if self._owed:
            self._owed.popleft()
        return _decode_results(*self._ready.popleft())

    def hurry(self) -> None:
        """A stop was requested: wait for this worker at most STOP_WAIT_SECONDS from now on."""
        self._stopping = True

    def close(self, *, abandon: bool = False) -> None:
        """Let the worker finish and exit, or (`abandon`) stop it at once; one that does not
        exit within its answer time is killed (a stopped process would never exit)."""
        if abandon and self._exit_code is None:
            self._process.kill()
        os.close(self._tasks)  # the worker reads to the end, then exits
        if self._exit_code is None:
            try:
                self._exit_code = self._process.wait(timeout=self._patience())
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._reap()
        os.close(self._results)

    def _patience(self) -> float:
        if self._stopping:
            return min(self._answer_timeout, STOP_WAIT_SECONDS)
        return self._answer_timeout

    def _silent_too_long(self, since: float) -> bool:
        return time.monotonic() - since >= self._patience()

    def _stuck(self, doing: str) -> MappingProcessError:
        """Kill a worker that stopped answering: what it holds is lost, the run must stop."""
        waited = self._patience()
        self._process.kill()
        self._reap()
        return MappingProcessError(
            f"mapping worker {self.number} (pid {self.pid}) {doing} within {waited:g} s "
            "(mapping_worker_timeout_seconds, or the wait after a stop signal); it was killed "
            "and no STATE covers its records"
        )

    def _died(self) -> MappingProcessError:
        return MappingProcessError(
            f"the mapping process ended unexpectedly (exit code {self._reap()})"
        )

    def _reap(self) -> int:
        if self._exit_code is None:
            self._exit_code = self._process.wait()
        return self._exit_code

    def _write(self, data: bytes, doing: str = "take a message") -> None:
        view = memoryview(data)
        heard = time.monotonic()
        while view:
            try:
                view = view[os.write(self._tasks, view) :]
                heard = time.monotonic()
            except BrokenPipeError:
                raise self._died() from None
            except BlockingIOError:
                # The pipe is full: the worker may be waiting for its last result to be read.
                readable, writable, _ = select.select(
                    [self._results], [self._tasks], [], _WAKE_SECONDS
                )
                if readable and self._receive(timeout=0):
                    heard = time.monotonic()
                elif not writable and self._silent_too_long(heard):
                    raise self._stuck(f"did not {doing}") from None

    def _receive(self, timeout: float | None) -> bool:
        """Read what the worker has sent, and keep each whole message; whether it sent any."""
        readable, _, _ = select.select([self._results], [], [], timeout)
        if not readable:
            return False
        data = os.read(self._results, PIPE_BYTES)
        if not data:
            raise self._died()
        self._inbox += data
        while len(self._inbox) >= _HEADER.size:
            size, kind = _HEADER.unpack_from(self._inbox)
            end = _HEADER.size + size
            if len(self._inbox) < end:
                break
            self._ready.append((kind, bytes(self._inbox[_HEADER.size : end])))
            del self._inbox[:end]
        return True


def _decode_results(kind: bytes, payload: bytes) -> list[MappedRecord]:
    if kind == _ERROR:
        raise MappingProcessError(payload.decode("utf-8", "replace"))
    return _RESULT_DECODER.decode(payload)


def _encode_chunk(chunk: Chunk) -> tuple[bytes, bytes]:
    lines = sum(type(entry[1]) is bytes for entry in chunk)
    if lines == len(chunk):
        return LINES_CHUNK, _LINES_ENCODER.encode(chunk)
    if lines:
        return PICKLED_CHUNK, pickle.dumps(list(chunk), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        return JSON_CHUNK, _JSON_ENCODER.encode(chunk)
    except TypeError:  # a value JSON cannot carry (a stream map may make one)
        return PICKLED_CHUNK, pickle.dumps(list(chunk), protocol=pickle.HIGHEST_PROTOCOL)


def _widen(fd: int) -> None:
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if set_size is not None:
        # Above the system's limit the default size is kept: it works, more slowly.
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, PIPE_BYTES)


def worker_main(task_read: int, result_write: int) -> None:
    """The worker process: read the run's options, then map chunks until the task pipe ends
    (the parent closed it, or died). A failure outside a chunk ends the worker with where it
    failed and exit code 1, never with the message (it may quote a value); the parent then
    stops the run."""
    try:
        _serve(task_read, result_write)
    except BaseException as exc:
        _describe(exc)
        sys.exit(1)


def _options(payload: bytes) -> MappingOptions:
    """The run's MappingOptions as the parent encoded them. Built from a dict, each field of
    the type it is declared with: a compiled build (setup.py) checks them, and msgspec cannot
    decode into a dataclass that mypyc compiled."""
    fields = msgspec.json.decode(payload)
    fields["hidden_digests"] = frozenset(fields["hidden_digests"])
    return MappingOptions(**fields)


def _serve(task_read: int, result_write: int) -> None:
    with os.fdopen(task_read, "rb", buffering=PIPE_BYTES) as tasks:  # closed: no ResourceWarning
        first = _read_message(tasks)
        if first is None or first[0] != _OPTIONS:
            return
        mapper = ChunkMapper(_options(first[1]))
        gc.freeze()  # modules and tables live as long as the worker: keep the collector off them
        while (message := _read_message(tasks)) is not None:
            kind, payload = message
            if kind == _STREAM:
                mapper.add_stream(payload)
                continue
            try:
                reply, answer = _RESULTS, mapper.map(kind, payload)
            except Exception as exc:  # reported to the parent, which stops the run
                reply, answer = _ERROR, _describe(exc).encode()
            try:
                _write_all(result_write, _frame(reply, answer))
            except BrokenPipeError:  # the parent is gone
                return


def _frame(kind: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), kind) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_message(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    size, kind = _HEADER.unpack(header)
    return kind, stream.read(size)


def _describe(exc: BaseException) -> str:
    """Where the worker failed, without the message (it may quote a record's value)."""
    where = "".join(traceback.format_tb(exc.__traceback__))
    sys.stderr.write(f"Internal error {type(exc).__name__} in the mapping process\n{where}")
    sys.stderr.flush()
    return f"the mapping process failed with {type(exc).__name__} (see its traceback above)"
