"""The delivery ledger: which events the Conversions API acknowledged, per connection, across runs.

Spotify de-duplicates on `event_id`, but for how long is not published; a full refresh, a lost
state backend or a replayed export would send every event again. The ledger remembers, per
`capi_connection_id`, each event the API acknowledged (2xx): its id and time, and the request
it went in (when, the answer's status and words, which run). Before a request is sent, the
events already in it are left out; after the API acknowledged a request, its events are written
in one transaction, in the request's thread, before the outcome reaches the pipeline, so a
STATE never covers an acknowledged event that the ledger does not hold.

Two ways of keeping it, chosen by the database:

- SQLite (the default, a file in the working directory): look up before sending, write after
  the acknowledgement. One run at a time per file is the expected use; two runs sharing a file
  may each send an event the other has not recorded yet (Spotify de-duplicates those).
- PostgreSQL (shared by several pipelines): each request *claims* its events first, inserting
  their rows in a transaction that stays open while the request is sent and commits with the
  answer. A second run inserting the same ids waits on the row locks until the first commits
  (then it leaves them out) or rolls back (then it sends them). A run that dies mid-request
  leaves nothing behind: the server rolls back its open transactions. Rows are inserted in
  sorted order, so two requests never wait on each other in a cycle.

SQLAlchemy Core, no SDK. Nothing personal is stored: ids, times, statuses and the API's words.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence, Set
from types import TracebackType
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .output_paths import sqlite_database
from .transport import DeliveryError

DAY = 86_400
# Characters of the API's answer kept per request (its words and sp_trace_id; api_message cuts
# them to 300 already).
ANSWER_CHARS = 400

METADATA = sa.MetaData()
REQUESTS = sa.Table(
    "ledger_requests",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection_id", sa.String(36), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("sent_at", sa.BigInteger, nullable=False),  # Unix seconds of the answer
    sa.Column("status", sa.Integer),  # the HTTP status of the answer
    sa.Column("answer", sa.String(ANSWER_CHARS)),  # the API's words, with any sp_trace_id
    sa.Column("events", sa.Integer, nullable=False),
    sa.Index("ix_ledger_requests_sent_at", "sent_at"),
)
EVENTS = sa.Table(
    "ledger_events",
    METADATA,
    sa.Column("connection_id", sa.String(36), primary_key=True),
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("event_time", sa.String(40), nullable=False),
    # No index on it: an index would hold the ids a second time (a third of the file); the
    # one query that needs it, pruning at start, scans instead (about a second per million).
    sa.Column("request_id", sa.Integer, nullable=False),
    sqlite_with_rowid=False,  # the primary key is the table: no second copy of the ids
)
# SQLite: what this run's requests acknowledged, appended in arrival order (no index), and
# merged into ledger_events in key order when the run closes, or by the next run if this one
# died first. Inserting each request's ids straight into the keyed table wrote a page for
# nearly every event (ids are random) and cost half the benchmark's throughput.
PENDING = sa.Table(
    "ledger_pending",
    METADATA,
    sa.Column("connection_id", sa.String(36), nullable=False),
    sa.Column("event_id", sa.String, nullable=False),
    sa.Column("event_time", sa.String(40), nullable=False),
    sa.Column("request_id", sa.Integer, nullable=False),
)
RUNS = sa.Table(
    "ledger_runs",
    METADATA,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("pruned", sa.Integer, nullable=False),
)

# The SQLite statements run for every request, on each request thread's own driver connection,
# with the ids and rows passed as one JSON array: binding 500 values one by one (let alone
# SQLAlchemy's processing of them) held the interpreter lock the reading thread needs, and cost
# 40% of the benchmark's throughput.
_SQLITE_DELIVERED = (
    "SELECT event_id FROM ledger_events WHERE connection_id = ? "
    "AND event_id IN (SELECT value FROM json_each(?))"
)
# A dry run cannot merge what a killed run left appended: it looks there too (a scan, and
# the table is empty unless a run died).
_SQLITE_DELIVERED_READ_ONLY = (
    "SELECT event_id FROM ledger_events WHERE connection_id = ? "
    "AND event_id IN (SELECT value FROM json_each(?)) "
    "UNION SELECT event_id FROM ledger_pending WHERE connection_id = ? "
    "AND event_id IN (SELECT value FROM json_each(?))"
)
_SQLITE_REQUEST = (
    "INSERT INTO ledger_requests (connection_id, run_id, sent_at, status, answer, events) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SQLITE_RECORD = (
    "INSERT INTO ledger_pending (connection_id, event_id, event_time, request_id) "
    "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), ? FROM json_each(?)"
)
_SQLITE_MERGE = (
    "INSERT INTO ledger_events (connection_id, event_id, event_time, request_id) "
    "SELECT connection_id, event_id, event_time, request_id FROM ledger_pending WHERE true "
    "ORDER BY connection_id, event_id, rowid ON CONFLICT (connection_id, event_id) DO UPDATE "
    "SET request_id = excluded.request_id, event_time = excluded.event_time"
)

# (event_id, encoded event) as delivery holds them; the event's time is read from the body.
Event = tuple[str, bytes]


class LedgerError(DeliveryError):
    """The ledger cannot be opened, read or written: the run stops, no STATE past it."""


class _EventTime(msgspec.Struct):
    event_time: str = ""


_event_time = msgspec.json.Decoder(_EventTime).decode


_TIME_KEY = b'"event_time":"'


def event_time(body: bytes) -> str:
    """The `event_time` of an encoded event (the mapping always sets it). Found as bytes in
    the compact JSON the mapping writes (a quote inside a string value is escaped, so the key
    cannot be forged there); decoded only if it is not found so."""
    start = body.find(_TIME_KEY)
    if start >= 0:
        start += len(_TIME_KEY)
        end = body.find(b'"', start)
        if end > start:
            return body[start:end].decode("utf-8", "replace")
    return _event_time(body).event_time


def describe(url: str) -> str:
    """Where the ledger is, for a message: the file of a SQLite URL, else the URL without its
    password."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return "ledger_url (not shown)"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database or ':memory:'}"
    return parsed.render_as_string(hide_password=True)


def _why(exc: BaseException) -> str:
    """A database error in a few words: the driver's first line, never SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:200]
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    return sqlite_database(url)


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

    def __init__(
        self,
        engine: sa.engine.Engine,
        description: str,
        *,
        run_id: str,
        resend: bool = False,
        read_only: bool = False,
    ) -> None:
        self.engine = engine
        self.description = description
        self.run_id = run_id
        self.resend = resend
        self.read_only = read_only
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite takes one writer at a time: the run's threads queue here, not on its lock.
        self._write_lock = threading.Lock() if self.sqlite else contextlib.nullcontext()
        self.pruned = 0
        self._local = threading.local()  # each request thread's driver connection (SQLite)
        self._raws: list[Any] = []
        self._raws_lock = threading.Lock()

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        *,
        run_id: str,
        retention_days: int = 0,
        resend: bool = False,
        read_only: bool = False,
        pool_size: int = 4,
    ) -> Ledger | None:
        """Open (create, prune) the ledger, or fail now with a message that says what to do.

        `read_only` (a dry run): nothing is created or written; a ledger that does not exist
        yet is no ledger (None).
        """
        description = describe(url)
        try:
            engine = _engine(url, read_only=read_only, pool_size=pool_size)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise LedgerError(
                f"ledger_url: cannot use {description} ({type(exc).__name__}); give an "
                "SQLAlchemy URL such as sqlite:///spotify-conversions-ledger.sqlite or "
                "postgresql+psycopg://user@host/db (pip install "
                "'target-spotify-conversions[postgres]'), or none to run without a ledger"
            ) from None
        if engine is None:
            return None
        ledger = cls(engine, description, run_id=run_id, resend=resend, read_only=read_only)
        try:
            ledger._prepare(retention_days)
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            raise LedgerError(
                f"the delivery ledger ({description}) cannot be "
                f"{'read' if read_only else 'opened and written'}: {_why(exc)}. Check the "
                "file (or database) and its permissions, point ledger_url elsewhere, or set "
                "it to none to run without a ledger (events already sent are then sent again)"
            ) from None
        return ledger

    def _prepare(self, retention_days: int) -> None:
        """Create the tables, prune old rows and note the run: a ledger that cannot be written
        fails here, before anything is sent, not midway."""
        if self.read_only:
            with self.engine.connect() as connection:
                connection.execute(sa.select(sa.func.count()).select_from(RUNS)).scalar()
            return
        _create_tables(self.engine)
        now = int(time.time())
        with self.engine.begin() as connection:
            if self.sqlite:  # what a run that died acknowledged
                _merge_pending(connection)
            if retention_days > 0:
                self.pruned = _prune(connection, now - retention_days * DAY)
            connection.execute(
                sa.insert(RUNS).values(run_id=self.run_id, started_at=now, pruned=self.pruned)
            )

    # --- a request's events -----------------------------------------------------------------

    def claim(self, connection_id: str, events: Sequence[Event]) -> Claim:
        """Before a request is sent: which of its events to leave out, and the claim to record
        the acknowledgement with."""
        if self.resend or self.read_only or self.sqlite:
            return _CheckedClaim(self, connection_id, events)
        return _HeldClaim(self, connection_id, events)

    def delivered(self, connection_id: str, event_ids: Sequence[str]) -> frozenset[str]:
        """Which of these events the ledger holds as delivered to the connection."""
        if not event_ids:
            return frozenset()
        ids = sorted(set(event_ids))
        try:
            if self.sqlite:  # the default's hot path: one JSON parameter, not 500 bound ones
                found = json.dumps(ids)
                rows = (
                    self._raw().execute(
                        _SQLITE_DELIVERED_READ_ONLY, (connection_id, found, connection_id, found)
                    )
                    if self.read_only
                    else self._raw().execute(_SQLITE_DELIVERED, (connection_id, found))
                )
                return frozenset(row[0] for row in rows.fetchall())
            query = sa.select(EVENTS.c.event_id).where(
                EVENTS.c.connection_id == connection_id, EVENTS.c.event_id.in_(ids)
            )
            with self.engine.connect() as connection:
                return frozenset(connection.execute(query).scalars())
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise LedgerError(
                f"the delivery ledger ({self.description}) could not be read: {_why(exc)}; "
                "no STATE was written past it"
            ) from None

    def record(
        self, connection_id: str, events: Sequence[Event], status: int, answer: str
    ) -> None:
        """The API acknowledged these events: one request row and a row per event, in one
        transaction (an event already there points to its newest request)."""
        if self.read_only or not events:
            return
        if self.sqlite:
            with self._write_lock, self._writing():
                self._sqlite_record(connection_id, events, status, answer)
            return
        with self._writing(), self.engine.begin() as connection:
            request_id = _insert_request(
                connection, self.run_id, connection_id, status, answer, len(events)
            )
            _write_events(connection, connection_id, events, request_id, replace=True)

    def _sqlite_record(
        self, connection_id: str, events: Sequence[Event], status: int, answer: str
    ) -> None:
        rows = json.dumps([(event_id, event_time(body)) for event_id, body in events])
        raw = self._raw()
        try:
            cursor = raw.execute(
                _SQLITE_REQUEST,
                (connection_id, self.run_id, int(time.time()), status, answer[:ANSWER_CHARS],
                 len(events)),
            )
            raw.execute(_SQLITE_RECORD, (connection_id, cursor.lastrowid, rows))
            raw.commit()
        except BaseException:
            raw.rollback()
            raise

    def _raw(self) -> Any:
        """This thread's own driver connection (SQLite: WAL and pragmas set as it connected)."""
        found = getattr(self._local, "raw", None)
        if found is None:
            found = self.engine.raw_connection()
            self._local.raw = found
            with self._raws_lock:
                self._raws.append(found)
        return found

    def close(self) -> None:
        """Merge what this run acknowledged into the keyed table (SQLite) and let go."""
        with self._raws_lock:
            raws, self._raws = self._raws, []
        for raw in raws:
            with contextlib.suppress(Exception):
                raw.close()
        try:
            if self.sqlite and not self.read_only:
                with self._write_lock, self._writing(), self.engine.begin() as connection:
                    _merge_pending(connection)
        finally:
            self.engine.dispose()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise LedgerError(
                f"the delivery ledger ({self.description}) could not be written: {_why(exc)}. "
                "The API had acknowledged the request; no STATE was written past it, so a "
                "re-run sends its events again"
            ) from None


class _CheckedClaim(Claim):
    """Look up before sending, write after the acknowledgement (SQLite, a resend, a dry run)."""

    def __init__(self, ledger: Ledger, connection_id: str, events: Sequence[Event]) -> None:
        self._ledger = ledger
        self._connection_id = connection_id
        if not ledger.resend:
            self.skip = ledger.delivered(connection_id, [event_id for event_id, _ in events])

    def record(self, events: Sequence[Event], status: int, answer: str) -> None:
        self._ledger.record(self._connection_id, events, status, answer)


class _HeldClaim(Claim):
    """Rows inserted before sending, in a transaction held until the answer (PostgreSQL).

    Another run's request holding the same ids makes the insert wait until it is over; ids
    that are then found were delivered, and are left out.
    """

    def __init__(self, ledger: Ledger, connection_id: str, events: Sequence[Event]) -> None:
        self._ledger = ledger
        self._connection_id = connection_id
        self._recorded: set[str] = set()
        self._connection = ledger.engine.connect()
        try:
            with ledger._writing():
                self._transaction = self._connection.begin()
                self._request_id = _insert_request(
                    self._connection, ledger.run_id, connection_id, None, "claimed", len(events)
                )
                self._claimed = _write_events(
                    self._connection, connection_id, events, self._request_id, replace=False
                )
        except BaseException:
            self._connection.close()
            raise
        self.skip = frozenset(event_id for event_id, _ in events) - self._claimed

    def record(self, events: Sequence[Event], status: int, answer: str) -> None:
        ids = {event_id for event_id, _ in events}
        with self._ledger._writing():
            if not self._recorded and ids == self._claimed:  # the whole request: one update
                request_id = self._request_id
                _update_request(self._connection, request_id, status, answer, len(ids))
            else:  # one part of a split request: its own request row
                request_id = _insert_request(
                    self._connection, self._ledger.run_id, self._connection_id, status, answer,
                    len(ids),
                )
                self._connection.execute(
                    sa.update(EVENTS)
                    .where(
                        EVENTS.c.connection_id == self._connection_id,
                        EVENTS.c.event_id.in_(sorted(ids)),
                    )
                    .values(request_id=request_id)
                )
        self._recorded |= ids

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if kind is not None:
                self._transaction.rollback()  # nothing of a failed request stays claimed
                return
            with self._ledger._writing():
                self._release(self._claimed - self._recorded)
                self._transaction.commit()
        finally:
            self._connection.close()

    def _release(self, refused: Set[str]) -> None:
        """Events the API refused (or that were never sent) are not delivered."""
        if refused:
            self._connection.execute(
                sa.delete(EVENTS).where(
                    EVENTS.c.connection_id == self._connection_id,
                    EVENTS.c.event_id.in_(sorted(refused)),
                    EVENTS.c.request_id == self._request_id,
                )
            )
        if not self._recorded or refused:
            still = self._connection.execute(
                sa.select(sa.func.count())
                .select_from(EVENTS)
                .where(EVENTS.c.request_id == self._request_id)
            ).scalar()
            if not still:
                self._connection.execute(
                    sa.delete(REQUESTS).where(REQUESTS.c.id == self._request_id)
                )


def _create_tables(engine: sa.engine.Engine, attempts: int = 3) -> None:
    """Create the tables that are missing. Two runs starting at once both find them missing
    and one CREATE fails on the other's table: the next look finds it there."""
    for attempt in range(attempts):
        try:
            METADATA.create_all(engine)
            return
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _engine(url: str, *, read_only: bool, pool_size: int) -> sa.engine.Engine | None:
    path = sqlite_path(url)
    if path is None:
        if sa.engine.make_url(url).get_backend_name() == "sqlite":
            raise sa.exc.ArgumentError("an in-memory SQLite ledger remembers nothing")
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    if read_only and not path.startswith("file:"):
        if not os.path.exists(path):
            return None
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    elif not path.startswith("file:"):  # a plain path (not an SQLite URI): make its folder
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Each request thread keeps its own connection; the main thread closes them all.
        connect_args={"timeout": 30, "check_same_thread": False},
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas if not read_only else _sqlite_read)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    """WAL: readers never wait for the writer; NORMAL sync: a power cut may lose the last
    acknowledgements (their events are then sent again), a crash of the run loses none."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_read(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _insert_request(
    connection: sa.engine.Connection,
    run_id: str,
    connection_id: str,
    status: int | None,
    answer: str,
    events: int = 0,
) -> int:
    result = connection.execute(
        sa.insert(REQUESTS)
        .values(
            connection_id=connection_id,
            run_id=run_id,
            sent_at=int(time.time()),
            status=status,
            answer=answer[:ANSWER_CHARS],
            events=events,
        )
        .returning(REQUESTS.c.id)
    )
    return int(result.scalar_one())


def _update_request(
    connection: sa.engine.Connection, request_id: int, status: int, answer: str, events: int
) -> None:
    connection.execute(
        sa.update(REQUESTS)
        .where(REQUESTS.c.id == request_id)
        .values(sent_at=int(time.time()), status=status, answer=answer[:ANSWER_CHARS],
                events=events)
    )


def _write_events(
    connection: sa.engine.Connection,
    connection_id: str,
    events: Sequence[Event],
    request_id: int,
    *,
    replace: bool,
) -> frozenset[str]:
    """Insert the events' rows in sorted order; the ids this statement inserted (`replace`:
    all, rows already there now pointing to this request)."""
    rows = {
        event_id: {
            "connection_id": connection_id,
            "event_id": event_id,
            "event_time": event_time(body),
            "request_id": request_id,
        }
        for event_id, body in events
    }
    values = [rows[event_id] for event_id in sorted(rows)]
    if not values:
        return frozenset()
    insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(EVENTS)
    if replace:
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=[EVENTS.c.connection_id, EVENTS.c.event_id],
                set_={"request_id": insert.excluded.request_id,
                      "event_time": insert.excluded.event_time},
            ),
            values,
        )
        return frozenset(rows)
    inserted = connection.execute(
        insert.values(values).on_conflict_do_nothing().returning(EVENTS.c.event_id)
    )
    return frozenset(inserted.scalars())


def _merge_pending(connection: sa.engine.Connection) -> None:
    """Move the appended rows into ledger_events, in key order (each page written once); a
    later row of one event wins."""
    connection.exec_driver_sql(_SQLITE_MERGE)
    connection.execute(sa.delete(PENDING))


def _prune(connection: sa.engine.Connection, before: int) -> int:
    """Delete the rows of requests answered before `before`; how many events went."""
    old = sa.select(REQUESTS.c.id).where(REQUESTS.c.sent_at < before)
    pruned = connection.execute(sa.delete(EVENTS).where(EVENTS.c.request_id.in_(old))).rowcount
    connection.execute(sa.delete(REQUESTS).where(REQUESTS.c.sent_at < before))
    connection.execute(sa.delete(RUNS).where(RUNS.c.started_at < before))
    return int(pruned or 0)


# --- asking the ledger (the spotify-conversions-ledger command) --------------------------------


def _all_events() -> Any:
    """The keyed rows and the rows a running (or died) run has not merged yet."""
    columns = ("connection_id", "event_id", "event_time", "request_id")
    return sa.union_all(
        sa.select(*(EVENTS.c[name] for name in columns)),
        sa.select(*(PENDING.c[name] for name in columns)),
    ).subquery("all_events")


def lookup(engine: sa.engine.Engine, event_id: str) -> list[dict[str, Any]]:
    """What the ledger knows of one event id, for each connection it was delivered to."""
    events = _all_events()
    query = (
        sa.select(
            events.c.connection_id,
            events.c.event_id,
            events.c.event_time,
            REQUESTS.c.sent_at,
            REQUESTS.c.status,
            REQUESTS.c.answer,
            REQUESTS.c.id.label("request"),
            REQUESTS.c.events.label("request_events"),
            REQUESTS.c.run_id,
        )
        .join(REQUESTS, REQUESTS.c.id == events.c.request_id)
        .where(events.c.event_id == event_id)
        .order_by(events.c.connection_id, REQUESTS.c.id)
    )
    with engine.connect() as connection:
        latest = {row.connection_id: dict(row._mapping) for row in connection.execute(query)}
    return list(latest.values())  # per connection, the newest request (a resend's)


def stats(engine: sa.engine.Engine) -> dict[str, Any]:
    """Events and requests per connection, the oldest and newest acknowledgement, the runs."""
    per_connection = (
        sa.select(
            REQUESTS.c.connection_id,
            sa.func.count().label("requests"),
            sa.func.min(REQUESTS.c.sent_at).label("first_sent_at"),
            sa.func.max(REQUESTS.c.sent_at).label("last_sent_at"),
        )
        .group_by(REQUESTS.c.connection_id)
        .order_by(REQUESTS.c.connection_id)
    )
    all_events = _all_events()
    events = sa.select(
        all_events.c.connection_id, sa.func.count(sa.distinct(all_events.c.event_id))
    ).group_by(all_events.c.connection_id)
    with engine.connect() as connection:
        counts = dict(connection.execute(events).tuples().all())
        connections = [
            {**row._mapping, "events": counts.get(row.connection_id, 0)}
            for row in connection.execute(per_connection)
        ]
        runs = connection.execute(
            sa.select(sa.func.count(), sa.func.max(RUNS.c.started_at))
        ).one()
    return {"connections": connections, "runs": runs[0], "last_run_started_at": runs[1]}
