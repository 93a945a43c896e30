"""The delivery ledger: which events the Conversions API acknowledged, per connection, across runs.

Spotify de-duplicates on `event_id`, but for how long is not published; a full refresh, a lost
state backend or a replayed export would send every event again. The ledger remembers, per
`capi_connection_id`, each event the API acknowledged (2xx): its id and time, and the request
it went in (when, the answer's status and words, which run). Before a request is sent, the
events already in it are left out; after the API acknowledged a request, its events are written
in one transaction, in the request's thread, before the outcome reaches the pipeline, so a
STATE never covers an acknowledged event that the ledger does not hold.

Two ways of keeping it, chosen by the database:

- A SQLite file (the default, in the working directory), here, with the standard library's
  sqlite3: look up before sending, append after the acknowledgement, merge the run's rows into
  the keyed table when it ends. One run at a time per file is the expected use; two runs
  sharing a file may each send an event the other has not recorded yet (Spotify de-duplicates
  those).
- A database server (PostgreSQL, shared by several pipelines), in ledger_sql.py with
  SQLAlchemy: each request claims its events before it is sent.

Nothing personal is stored: ids, times, statuses and the API's words.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec

from .event_time import EPOCH, UTC, format_event_time, from_iso
from .output_paths import (
    OutputPathError,
    check_no_broken_link,
    name_max,
    password_holds_at,
    special_file,
    sqlite_database,
    sqlite_file,
)
from .transport import DeliveryError

if TYPE_CHECKING:
    import sqlalchemy as sa

DAY = 86_400
# How long a run waits for another's write to a SQLite ledger to end (SQLite's busy timeout),
# and between its tries to set WAL mode (_set_wal).
BUSY_SECONDS = 30
_WAL_RETRY_SECONDS = 0.01
# Characters of the API's answer kept per request (its words and sp_trace_id; api_message cuts
# them to 300 already).
ANSWER_CHARS = 400

# The tables as ledger_sql.METADATA describes them, in SQLite's words (IF NOT EXISTS: runs
# starting at once on a new file each create what is missing). tests/test_ledger.py checks
# that they are the same tables.
_SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS ledger_connections (id INTEGER NOT NULL, "
    "connection_id VARCHAR(36) NOT NULL, PRIMARY KEY (id), UNIQUE (connection_id))",
    "CREATE TABLE IF NOT EXISTS ledger_delivered (connection INTEGER NOT NULL, "
    "event_id VARCHAR NOT NULL, event_time_ms BIGINT, request_id INTEGER NOT NULL, "
    "PRIMARY KEY (connection, event_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ledger_appended (connection INTEGER NOT NULL, "
    "event_id VARCHAR NOT NULL, event_time_ms BIGINT, request_id INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_requests (id INTEGER NOT NULL, "
    "connection_id VARCHAR(36) NOT NULL, run_id VARCHAR(36) NOT NULL, sent_at BIGINT NOT NULL, "
    "status INTEGER, answer VARCHAR(400), events INTEGER NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX IF NOT EXISTS ix_ledger_requests_sent_at ON ledger_requests (sent_at)",
    "CREATE TABLE IF NOT EXISTS ledger_runs (run_id VARCHAR(36) NOT NULL, "
    "started_at BIGINT NOT NULL, pruned INTEGER NOT NULL, PRIMARY KEY (run_id))",
)
# A connection's number in the event rows (ledger_connections).
_SQLITE_NUMBER = "SELECT id FROM ledger_connections WHERE connection_id = ?"
_SQLITE_NEW_NUMBER = "INSERT OR IGNORE INTO ledger_connections (connection_id) VALUES (?)"
# The statements run for every request, on each request thread's own connection, with the ids
# and rows passed as one JSON array: binding 500 values one by one held the interpreter lock
# the reading thread needs, and cost 40% of the benchmark's throughput.
_SQLITE_DELIVERED = (
    "SELECT event_id FROM ledger_delivered WHERE connection = ? "
    "AND event_id IN (SELECT value FROM json_each(?))"
)
# Whether the file holds any event of a connection: asked once per connection and run, so
# that a first run to a connection (a backfill) looks nothing up.
_SQLITE_HOLDS = "SELECT 1 FROM ledger_delivered WHERE connection = ? LIMIT 1"
# Appended in arrival order (no index) and merged in key order when the run closes, or by the
# next run if this one died first: inserting each request's ids straight into the keyed table
# wrote a page for nearly every event (ids are random) and cost half the throughput. An event's
# time as sent (RFC 3339, milliseconds, Z) is kept in milliseconds since 1970: 8 bytes in a
# row instead of 24 characters; NULL for a text SQLite cannot read as a time.
_SQLITE_MS_OF = "CAST(round((julianday({}) - 2440587.5) * 86400000) AS INTEGER)"
# A request's events come as one JSON object, {event_id: event_time, ...} (record): json_each
# gives each id as a key and its time as the value, where an array of [id, time] pairs had
# each pair parsed again by json_extract, half of the statement's CPU.
_SQLITE_APPEND = (
    "INSERT INTO ledger_appended (connection, event_id, event_time_ms, request_id) "
    "SELECT ?, key, {}, ? FROM json_each(?)"
)
_SQLITE_RECORD = _SQLITE_APPEND.format(_SQLITE_MS_OF.format("value"))
_SQLITE_REQUEST = (
    "INSERT INTO ledger_requests (connection_id, run_id, sent_at, status, answer, events) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# The merge, by the rows it takes (a WHERE clause: SQLite needs one before an upsert's ON)
# and their order; a later row of one event wins.
_SQLITE_MERGE_ROWS = (
    "INSERT INTO ledger_delivered (connection, event_id, event_time_ms, request_id) "
    "SELECT connection, event_id, event_time_ms, request_id FROM ledger_appended {} "
    "ON CONFLICT (connection, event_id) DO UPDATE "
    "SET request_id = excluded.request_id, event_time_ms = excluded.event_time_ms"
)
_SQLITE_MERGE = _SQLITE_MERGE_ROWS.format("WHERE true ORDER BY connection, event_id, rowid")
# The same for one connection: its rows sorted by event id alone. Each such statement scans
# the appended rows, so beyond a few connections the one above is cheaper.
_SQLITE_MERGE_ONE = _SQLITE_MERGE_ROWS.format("WHERE connection = ? ORDER BY event_id, rowid")
_MERGED_ONE_BY_ONE = 4
_SQLITE_PRUNE = (
    "DELETE FROM ledger_delivered WHERE request_id IN "
    "(SELECT id FROM ledger_requests WHERE sent_at < ?)",
    "DELETE FROM ledger_requests WHERE sent_at < ?",
    "DELETE FROM ledger_runs WHERE started_at < ?",
)
# The first layout (earlier builds): the connection's id and the time's text in every row, in
# ledger_events (keyed) and ledger_pending (appended, in rowid order). A run moves such a
# file's rows to the tables above when it opens it.
FIRST_LAYOUT_TABLES = {"ledger_events": "", "ledger_pending": "ORDER BY t.rowid"}
# A dry run reads and never writes: it cannot merge what a killed run left appended, nor move
# a file of the first layout (nor one a run was killed while moving, nor one an earlier build
# wrote to after a later one). It reads every table of events the file holds, by connection
# id (the appended ones by a scan: they are empty unless a run died or a build went back).
_IN_CONNECTION = {
    "ledger_delivered": "connection = (SELECT id FROM ledger_connections WHERE connection_id = ?)",
    "ledger_appended": "connection = (SELECT id FROM ledger_connections WHERE connection_id = ?)",
    "ledger_events": "connection_id = ?",
    "ledger_pending": "connection_id = ?",
}
_SQLITE_TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
_SQLITE_MOVE_FIRST_LAYOUT = (
    "INSERT OR IGNORE INTO ledger_connections (connection_id) "
    "SELECT DISTINCT connection_id FROM {table}",
    # into the appended rows, in the order written: the merge that follows sorts them
    "INSERT INTO ledger_appended (connection, event_id, event_time_ms, request_id) "
    "SELECT (SELECT id FROM ledger_connections AS c WHERE c.connection_id = t.connection_id), "
    "t.event_id, CASE WHEN t.event_time GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*' "
    "THEN {ms} END, t.request_id FROM {table} AS t {order}",
    "DROP TABLE {table}",
)
# A SQLite URL the standard library opens itself: the default driver, a plain path, no query.
_PLAIN_SQLITE_URL = re.compile(r"sqlite(?:\+pysqlite)?:///[^?]+")

# (event_id, event_time) of an event in a request, as the mapping wrote them into its body.
Event = tuple[str, str]


class LedgerError(DeliveryError):
    """The ledger cannot be opened, read or written: the run stops, no STATE past it."""


_json_encoder = msgspec.json.Encoder()


def _encode_json(value: object) -> str:
    """JSON text for json_each: as text, since SQLite 3.45 reads a bound blob as JSONB."""
    return _json_encoder.encode(value).decode("utf-8")


_MILLISECOND = dt.timedelta(milliseconds=1)


def time_ms(text: str) -> int | None:
    """An event's time as sent (RFC 3339 in UTC), in milliseconds since 1970, as the event
    rows keep it; None for a text that is no such time."""
    try:
        moment = from_iso(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _MILLISECOND


def time_text(ms: int | None) -> str | None:
    """An event row's time as it was sent (None when there is none, or no such time)."""
    if not isinstance(ms, int):
        return None
    try:
        return format_event_time(EPOCH + ms * _MILLISECOND)
    except OverflowError:
        return None


def describe(url: str) -> str:
    """Where the ledger is, for a message: the file of a SQLite URL, else the URL without its
    password and without the values of its query (`?password=...` is a form drivers read
    too)."""
    path = sqlite_path(url)
    if path is not None:
        return f"SQLite file {path}"
    import sqlalchemy as sa  # a server's URL: SQLAlchemy reads it

    if password_holds_at(url):
        return "ledger_url (not shown)"
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is no number
        return "ledger_url (not shown)"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database or ':memory:'}"
    hidden = parsed.set(query=dict.fromkeys(parsed.query, "***"))
    return hidden.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def why(exc: BaseException) -> str:
    """A database error in a few words: the driver's first line, never SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:200]
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    return sqlite_database(url)


def sqlite_pragmas(raw: Any, *, read_only: bool) -> None:
    """WAL: readers never wait for the writer; NORMAL sync: a power cut may lose the last
    acknowledgements (their events are then sent again), a crash of the run loses none. A
    reader (a dry run, the ledger command) is held to reading."""
    cursor = raw.cursor()
    if read_only:
        cursor.execute("PRAGMA query_only=ON")
    else:
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _set_wal(cursor: Any) -> None:
    """WAL mode, which stays in the file once a run has set it. While another connection
    writes to a file not yet in WAL mode (runs that start together on a new ledger), SQLite
    refuses the change at once with "database is locked", without waiting its busy timeout:
    it is tried again until that timeout."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_SECONDS)


def _database_error(exc: BaseException) -> bool:
    """sqlite3's errors, and SQLAlchemy's (a SQLite URL it opens), without loading it."""
    return isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("sqlalchemy")


class Claim:
    """One request's events in the ledger: which to leave out, and the record of what the API
    acknowledged. A context manager: leaving it commits (or, on an error, drops) the claim."""

    skip: frozenset[str] = frozenset()

    def record(self, events: Sequence[Event], status: int, answer: str) -> None:
        """The API acknowledged these events (a whole request, or one part of a split one)."""

    def __enter__(self) -> Claim:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class Ledger:
    """The ledger of one run: opened (and pruned) at start, shared by the request threads."""

    sqlite = False

    def __init__(
        self, description: str, *, run_id: str, resend: bool = False, read_only: bool = False
    ) -> None:
        self.description = description
        self.run_id = run_id
        self.resend = resend
        self.read_only = read_only
        self.pruned = 0

    @property
    def engine(self) -> sa.engine.Engine:
        """A SQLAlchemy engine on the ledger, for the ledger command's queries."""
        raise NotImplementedError

    def claim(self, connection_id: str, events: Sequence[Event]) -> Claim:
        """Before a request is sent: which of its events to leave out, and the claim to record
        the acknowledgement with."""
        if self.resend or self.read_only or self.sqlite:
            return _CheckedClaim(self, connection_id, events)
        return self.held_claim(connection_id, events)

    def held_claim(self, connection_id: str, events: Sequence[Event]) -> Claim:
        """A claim whose rows are held while the request runs (a server)."""
        raise NotImplementedError

    def delivered(self, connection_id: str, event_ids: Sequence[str]) -> frozenset[str]:
        """Which of these events the ledger holds as delivered to the connection."""
        raise NotImplementedError

    def record(
        self, connection_id: str, events: Sequence[Event], status: int, answer: str
    ) -> None:
        """The API acknowledged these events: one request row and a row per event, in one
        transaction (an event already there points to its newest request)."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of the ledger (SQLite: merge what this run acknowledged first)."""
        raise NotImplementedError

    def unusable(self, exc: BaseException) -> str:
        return (
            f"the delivery ledger ({self.description}) cannot be "
            f"{'read' if self.read_only else 'opened and written'}: {why(exc)}. Check the "
            "file (or database) and its permissions, point ledger_url elsewhere, or set "
            "it to none to run without a ledger (events already sent are then sent again)"
        )

    def unreadable(self, exc: BaseException) -> str:
        return (
            f"the delivery ledger ({self.description}) could not be read: {why(exc)}; "
            "no STATE was written past it"
        )

    def unwritable(self, exc: BaseException) -> str:
        return (
            f"the delivery ledger ({self.description}) could not be written: {why(exc)}. "
            "The API had acknowledged the request; no STATE was written past it, so a "
            "re-run sends its events again"
        )


class SqliteLedger(Ledger):
    """The ledger in a SQLite file: each request thread on its own connection, one writer at
    a time, the run's rows appended and merged into the keyed table when it closes."""

    sqlite = True

    def __init__(
        self,
        url: str,
        connect: Callable[[], Any],
        description: str,
        *,
        run_id: str,
        resend: bool = False,
        read_only: bool = False,
        engine: sa.engine.Engine | None = None,
    ) -> None:
        super().__init__(description, run_id=run_id, resend=resend, read_only=read_only)
        self._url = url
        self._connect = connect
        self._engine = engine
        # SQLite takes one writer at a time: the run's threads queue here, not on its lock.
        self._write_lock = threading.Lock()
        self._local = threading.local()  # each request thread's own connection
        self._raws: list[Any] = []
        self._raws_lock = threading.Lock()
        # Per connection: whether the file held any of its events when this run first sent to
        # it. One that held none is not looked up again: this run's own rows are only merged
        # when it ends, and another run's may be missed as two runs sharing a file may miss
        # each other's anyway (see the module's words).
        self._holds: dict[str, bool] = {}
        self._numbers: dict[str, int] = {}  # each connection's number in the event rows
        # read only: the statements reading every table of events the file holds
        self._read_holds = self._read_delivered = ""
        self._read_tables = 0

    @classmethod
    def open_file(
        cls,
        url: str,
        path: str,
        description: str,
        *,
        run_id: str,
        retention_days: int,
        resend: bool,
        read_only: bool,
    ) -> SqliteLedger | None:
        uri = path.startswith("file:")
        _check_place(sqlite_file(path), description, read_only=read_only)
        if read_only and not uri and not os.path.exists(path):
            return None
        engine = None
        try:
            if not read_only and not uri:  # a plain path: make its folder
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            if _PLAIN_SQLITE_URL.fullmatch(url) and not uri:
                connect: Callable[[], Any] = lambda: _connect(path, read_only=read_only)  # noqa: E731
            else:  # a driver, a query or a `file:` URI: as SQLAlchemy reads the URL
                engine = sqlite_engine(url, read_only=read_only, pool_size=None)
                connect = engine.raw_connection
        except Exception as exc:  # a folder under a file; a driver not installed
            if isinstance(exc, OSError):
                why_not = f"its folder cannot be made ({exc.strerror})"
            elif isinstance(exc, ImportError) or _database_error(exc):
                why_not = f"its driver is not installed ({type(exc).__name__})"
            else:
                raise
            raise _cannot_use(description, why_not) from None
        ledger = cls(url, connect, description, run_id=run_id, resend=resend,
                     read_only=read_only, engine=engine)
        try:
            ledger._prepare(retention_days)
        except Exception as exc:
            ledger._let_go()
            if not _database_error(exc):
                raise
            raise LedgerError(ledger.unusable(exc)) from None
        return ledger

    @property
    def engine(self) -> sa.engine.Engine:
        if self._engine is None:
            self._engine = sqlite_engine(self._url, read_only=self.read_only)
        return self._engine

    def _prepare(self, retention_days: int) -> None:
        """Create the tables, merge what a run that died acknowledged, prune old rows and note
        the run: a ledger that cannot be written fails here, before anything is sent."""
        raw = self._raw()
        if self.read_only:
            raw.execute("SELECT count(*) FROM ledger_runs").fetchone()
            tables = [table for table in _IN_CONNECTION
                      if raw.execute(_SQLITE_TABLE_EXISTS, (table,)).fetchone()]
            if not tables:
                raise sqlite3.OperationalError("no table of delivered events")
            self._read_tables = len(tables)
            self._read_holds, self._read_delivered = _read_only_statements(tables)
            return
        for statement in _SQLITE_TABLES:
            raw.execute(statement)
        now = int(time.time())
        with self._write_lock, _transaction(raw):
            raw.execute("BEGIN IMMEDIATE")  # the write lock first, before reading what to move
            _move_first_layout(raw)
            _merge(raw)
            if retention_days > 0:
                self.pruned = _prune(raw, now - retention_days * DAY)
            raw.execute(
                "INSERT INTO ledger_runs (run_id, started_at, pruned) VALUES (?, ?, ?)",
                (self.run_id, now, self.pruned),
            )

    def delivered(self, connection_id: str, event_ids: Sequence[str]) -> frozenset[str]:
        if not event_ids or not self._held(connection_id):
            return frozenset()
        found = _encode_json(sorted(set(event_ids)))  # one JSON parameter, not 500 bound ones
        try:
            if self.read_only:
                rows = self._raw().execute(
                    self._read_delivered, (connection_id, found) * self._read_tables
                )
            else:
                rows = self._raw().execute(
                    _SQLITE_DELIVERED, (self._numbers[connection_id], found)
                )
            return frozenset(row[0] for row in rows.fetchall())
        except Exception as exc:
            if not _database_error(exc):
                raise
            raise LedgerError(self.unreadable(exc)) from None

    def _held(self, connection_id: str) -> bool:
        """Whether the file held any event of the connection when this run first asked."""
        held = self._holds.get(connection_id)
        if held is None:
            try:
                if self.read_only:
                    keys = (connection_id,) * self._read_tables
                    held = self._raw().execute(self._read_holds, keys).fetchone() is not None
                else:
                    number = self._number(connection_id)
                    held = number is not None and (
                        self._raw().execute(_SQLITE_HOLDS, (number,)).fetchone() is not None
                    )
            except Exception as exc:
                if not _database_error(exc):
                    raise
                raise LedgerError(self.unreadable(exc)) from None
            self._holds[connection_id] = held
        return held

    def _number(self, connection_id: str) -> int | None:
        """The connection's number in the event rows (None: the file has none for it yet)."""
        number = self._numbers.get(connection_id)
        if number is None:
            row = self._raw().execute(_SQLITE_NUMBER, (connection_id,)).fetchone()
            if row is not None:
                number = self._numbers[connection_id] = row[0]
        return number

    def record(
        self, connection_id: str, events: Sequence[Event], status: int, answer: str
    ) -> None:
        if self.read_only or not events:
            return
        # {id: time} (_SQLITE_RECORD); an id twice in a request keeps its later time, as the
        # merge keeps an event's later row
        rows = _encode_json(dict(events))
        raw = self._raw()
        with self._write_lock, self._writing(), _transaction(raw):
            number = self._numbers.get(connection_id)
            if number is None:  # kept once the transaction that added it is committed
                raw.execute(_SQLITE_NEW_NUMBER, (connection_id,))
                number = raw.execute(_SQLITE_NUMBER, (connection_id,)).fetchone()[0]
            cursor = raw.execute(
                _SQLITE_REQUEST,
                (connection_id, self.run_id, int(time.time()), status, answer[:ANSWER_CHARS],
                 len(events)),
            )
            raw.execute(_SQLITE_RECORD, (number, cursor.lastrowid, rows))
        self._numbers[connection_id] = number

    def close(self) -> None:
        """Merge what this run acknowledged into the keyed table and let go."""
        try:
            if not self.read_only:
                raw = self._raw()
                with self._write_lock, self._writing(), _transaction(raw):
                    raw.execute("BEGIN IMMEDIATE")
                    _merge(raw)
        finally:
            self._let_go()

    def _let_go(self) -> None:
        with self._raws_lock:
            raws, self._raws = self._raws, []
        for raw in raws:
            with contextlib.suppress(Exception):
                raw.close()
        self._local = threading.local()
        if self._engine is not None:
            self._engine.dispose()

    def _raw(self) -> Any:
        """This thread's own connection (WAL and pragmas set as it connected)."""
        found = getattr(self._local, "raw", None)
        if found is None:
            found = self._connect()
            self._local.raw = found
            with self._raws_lock:
                self._raws.append(found)
        return found

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if not _database_error(exc):
                raise
            raise LedgerError(self.unwritable(exc)) from None


def _check_place(file: str, description: str, *, read_only: bool) -> None:
    """Refuse what SQLite would fail on with its bare "unable to open database file", wait on
    for ever, or write where no one looks: a link to nothing (refused as for the other
    outputs), a directory, a FIFO or a device, and, for a run that writes, a name that leaves
    no room for SQLite's side files."""
    try:
        check_no_broken_link("ledger_url", file)
    except OutputPathError as exc:
        raise LedgerError(str(exc)) from None
    kind = special_file(file)
    if kind is not None:
        raise _cannot_use(description, f"it is {kind}, not a regular file")
    # opened by SQLite as the database is, beside the file a link leads to
    places = dict.fromkeys((file, os.path.realpath(file)))
    for side in [place + suffix for place in places for suffix in _SIDE_FILES]:
        kind = special_file(side)
        if kind is not None:
            raise _cannot_use(
                description, f"{side} beside it is {kind}, not a regular file (SQLite writes it)"
            )
    too_long = None if read_only else _side_files_refusal(file)
    if too_long:
        raise _cannot_use(description, too_long)


# SQLite writes beside the database `NAME-journal` (the longest), `NAME-wal` and `NAME-shm`.
_SIDE_FILES = ("-journal", "-wal", "-shm")
_SIDE_FILE = _SIDE_FILES[0]


def _side_files_refusal(file: str) -> str | None:
    """Why SQLite cannot create its side files beside the database, or None: with a name
    within 8 bytes of the file system's limit it creates the file, then fails."""
    folder, name = os.path.split(os.path.abspath(file))
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)  # not made yet: its file system is the nearest's
    size, limit = len(os.fsencode(name)), name_max(folder)
    if size + len(_SIDE_FILE) <= limit:
        return None
    if size > limit:
        return f"its name is longer than the file system allows ({size} bytes, at most {limit})"
    return (
        f"its name is too long for SQLite's side files: NAME{_SIDE_FILE}, which SQLite writes "
        f"beside it, would be {size + len(_SIDE_FILE)} bytes, and the file system allows "
        f"{limit}; give a name of at most {limit - len(_SIDE_FILE)} bytes"
    )


def _cannot_use(description: str, why_not: str) -> LedgerError:
    return LedgerError(
        f"ledger_url: cannot use {description}: {why_not}; point ledger_url elsewhere, or set "
        "it to none to run without a ledger"
    )


def sqlite_engine(
    url: str, *, read_only: bool, pool_size: int | None = 4
) -> sa.engine.Engine:
    """A SQLAlchemy engine on a SQLite ledger: for the ledger command's queries, and for a run
    whose SQLite URL names a driver, a query or a `file:` URI. A plain path (and any path read
    only) is opened by `_connect`, so every form of a URL opens the same file (`%20` and `#`
    are part of a file's name, as SQLAlchemy reads a URL).

    `pool_size` None: no pool, a connection each time one is asked for. A run's request
    threads each keep one for the whole run, as many as requests may be in flight: a pool of
    4 (and 4 more) held the ninth thread 30 s and failed the run with TimeoutError."""
    import sqlalchemy as sa

    pooling: dict[str, Any] = (
        {"poolclass": sa.pool.NullPool}
        if pool_size is None
        else {"poolclass": sa.pool.QueuePool, "pool_size": pool_size, "max_overflow": pool_size}
    )
    path = sqlite_path(url)
    if path is not None and not path.startswith("file:") and (
        read_only or _PLAIN_SQLITE_URL.fullmatch(url)
    ):
        return sa.create_engine(
            "sqlite://", creator=lambda: _connect(path, read_only=read_only), **pooling
        )
    engine = sa.create_engine(
        url, connect_args={"timeout": BUSY_SECONDS, "check_same_thread": False}, **pooling
    )
    sa.event.listen(engine, "connect", lambda raw, _: sqlite_pragmas(raw, read_only=read_only))
    return engine


def _connect(path: str, *, read_only: bool) -> sqlite3.Connection:
    """A connection to a plain SQLite file. Threads share none: each request thread has its
    own (`check_same_thread` off only so that the main thread can close them all).

    A reader's (a dry run, the ledger command) opens it read-only, and, when no run left an
    unmerged write-ahead log beside it (a run that closed removes it), as immutable: SQLite
    then creates no `-wal` and `-shm` files, and reads a ledger in a directory it may not
    write to."""
    if not read_only:
        raw = sqlite3.connect(path, timeout=BUSY_SECONDS, check_same_thread=False)
    else:
        wal = f"{path}-wal"
        settled = not os.path.exists(wal) or os.path.getsize(wal) == 0
        mode = "mode=ro&immutable=1" if settled else "mode=ro"
        target = f"file:{urllib.parse.quote(os.path.abspath(path))}?{mode}"
        raw = sqlite3.connect(
            target, timeout=BUSY_SECONDS, check_same_thread=False, uri=True
        )
    sqlite_pragmas(raw, read_only=read_only)
    return raw


@contextlib.contextmanager
def _transaction(raw: Any) -> Iterator[None]:
    """Commit what the block wrote, or roll it back when it fails."""
    try:
        yield
        raw.commit()
    except BaseException:
        raw.rollback()
        raise


def _merge(raw: Any) -> None:
    """Move the appended rows into ledger_delivered, in key order (each page written once); a
    later row of one event wins. In a transaction begun IMMEDIATE: it holds the write lock
    before it reads which connections the rows are of, so no other run appends to them before
    they are deleted."""
    connections = raw.execute("SELECT DISTINCT connection FROM ledger_appended").fetchall()
    if len(connections) > _MERGED_ONE_BY_ONE:
        raw.execute(_SQLITE_MERGE)
    else:
        for (number,) in connections:
            raw.execute(_SQLITE_MERGE_ONE, (number,))
    raw.execute("DELETE FROM ledger_appended")


def _read_only_statements(tables: Sequence[str]) -> tuple[str, str]:
    """A reader's look-ups over these tables of events: whether the connection has any, and
    which of a request's ids it has (each table's statement takes the connection id)."""
    # the table names and conditions are this module's own (_IN_CONNECTION), never input
    parts = [f"FROM {table} WHERE {_IN_CONNECTION[table]}" for table in tables]
    holds = " UNION ALL ".join(f"SELECT 1 {part}" for part in parts) + " LIMIT 1"
    delivered = " UNION ".join(
        f"SELECT event_id {part} AND event_id IN (SELECT value FROM json_each(?))"  # noqa: S608
        for part in parts
    )
    return holds, delivered


def _move_first_layout(raw: Any) -> None:
    """Move a file's rows of the first layout into this layout's tables, once (it drops the
    first layout's tables); the merge that follows sorts them in."""
    ms = _SQLITE_MS_OF.format("t.event_time")
    for table, order in FIRST_LAYOUT_TABLES.items():
        if raw.execute(_SQLITE_TABLE_EXISTS, (table,)).fetchone():
            for statement in _SQLITE_MOVE_FIRST_LAYOUT:
                raw.execute(statement.format(table=table, order=order, ms=ms))


def _prune(raw: Any, before: int) -> int:
    """Delete the rows of requests answered before `before`; how many events went."""
    pruned = raw.execute(_SQLITE_PRUNE[0], (before,)).rowcount
    for statement in _SQLITE_PRUNE[1:]:
        raw.execute(statement, (before,))
    return int(pruned or 0)


class _CheckedClaim(Claim):
    """Look up before sending, write after the acknowledgement (SQLite, a resend, a dry run)."""

    def __init__(self, ledger: Ledger, connection_id: str, events: Sequence[Event]) -> None:
        self._ledger = ledger
        self._connection_id = connection_id
        if not ledger.resend:
            self.skip = ledger.delivered(connection_id, [event_id for event_id, _ in events])

    def record(self, events: Sequence[Event], status: int, answer: str) -> None:
        self._ledger.record(self._connection_id, events, status, answer)
