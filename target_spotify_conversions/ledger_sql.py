"""The delivery ledger's SQLAlchemy side: its tables, a ledger on a database server
(PostgreSQL, shared by several pipelines), and the queries of `spotify-conversions-ledger`.

A run whose ledger is a SQLite file (the default) never loads this module: ledger.py keeps it
with the standard library's sqlite3 (loading SQLAlchemy took 0.17 s of every run). The tables
here are the one description of the schema; ledger.py's SQLite statements create the same
(tests/test_ledger.py compares them).

On a server, each request *claims* its events first, inserting their rows in a transaction
that stays open while the request is sent and commits with the answer. A second run inserting
the same ids waits on the row locks until the first commits (then it leaves them out) or rolls
back (then it sends them). A run that dies mid-request leaves nothing behind: the server rolls
back its open transactions. Rows are inserted in sorted order, so two requests never wait on
each other in a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence, Set
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .ledger import (
    ANSWER_CHARS,
    DAY,
    FIRST_LAYOUT_TABLES,
    Claim,
    Event,
    Ledger,
    LedgerError,
    time_ms,
    time_text,
)

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
# Each connection's id once, and a number for it in every event row: 36 characters fewer in
# each row of the two tables below (and the time as a number, 16 fewer) made SQLite's
# end-of-run merge 40% cheaper.
CONNECTIONS = sa.Table(
    "ledger_connections",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection_id", sa.String(36), nullable=False, unique=True),
)
EVENTS = sa.Table(
    "ledger_delivered",
    METADATA,
    sa.Column("connection", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String, primary_key=True),
    # The event's time as sent, in milliseconds since 1970 (8 bytes, not 24 characters); the
    # ledger command writes it back as sent. NULL: not a time the ledger could read.
    sa.Column("event_time_ms", sa.BigInteger),
    # No index on it: an index would hold the ids a second time (a third of the file); the
    # one query that needs it, pruning at start, scans instead (about a second per million).
    sa.Column("request_id", sa.Integer, nullable=False),
    sqlite_with_rowid=False,  # the primary key is the table: no second copy of the ids
)
# SQLite: what this run's requests acknowledged, appended in arrival order (no index), and
# merged into ledger_delivered in key order when the run closes, or by the next run if this
# one died first. Inserting each request's ids straight into the keyed table wrote a page for
# nearly every event (ids are random) and cost half the benchmark's throughput.
PENDING = sa.Table(
    "ledger_appended",
    METADATA,
    sa.Column("connection", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String, nullable=False),
    sa.Column("event_time_ms", sa.BigInteger),
    sa.Column("request_id", sa.Integer, nullable=False),
)
RUNS = sa.Table(
    "ledger_runs",
    METADATA,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("pruned", sa.Integer, nullable=False),
)



class ServerLedger(Ledger):
    """The ledger on a database server, through SQLAlchemy: claims held while requests run."""

    def __init__(self, engine: sa.engine.Engine, description: str, **options: Any) -> None:
        super().__init__(description, **options)
        self._engine = engine
        self._numbers: dict[str, int] = {}
        self._events: Any = None  # read only: every event row, by connection id

    @property
    def engine(self) -> sa.engine.Engine:
        return self._engine

    @classmethod
    def open_server(
        cls,
        url: str,
        description: str,
        *,
        run_id: str,
        retention_days: int,
        resend: bool,
        read_only: bool,
        pool_size: int,
    ) -> ServerLedger:
        try:
            in_memory = sa.engine.make_url(url).get_backend_name() == "sqlite"
        except sa.exc.ArgumentError:
            in_memory = False
        if in_memory:
            raise LedgerError(
                "ledger_url: an in-memory SQLite ledger remembers nothing from one run to the "
                "next; give a file (sqlite:///spotify-conversions-ledger.sqlite), or none to "
                "run without a ledger"
            )
        try:
            engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise LedgerError(
                f"ledger_url: cannot use {description} ({type(exc).__name__}); give an "
                "SQLAlchemy URL such as sqlite:///spotify-conversions-ledger.sqlite or "
                "postgresql+psycopg://user@host/db (pip install "
                "'target-spotify-conversions[postgres]'), or none to run without a ledger"
            ) from None
        ledger = cls(engine, description, run_id=run_id, resend=resend, read_only=read_only)
        try:
            ledger._prepare(retention_days)
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            raise LedgerError(ledger.unusable(exc)) from None
        return ledger

    def _prepare(self, retention_days: int) -> None:
        if self.read_only:
            with self.engine.connect() as connection:
                connection.execute(sa.select(sa.func.count()).select_from(RUNS)).scalar()
                self._events = _all_events(connection)
            return
        _create_tables(self.engine)
        now = int(time.time())
        with self.engine.begin() as connection:
            _move_first_layout(connection)
            if retention_days > 0:
                self.pruned = _prune(connection, now - retention_days * DAY)
            connection.execute(
                sa.insert(RUNS).values(run_id=self.run_id, started_at=now, pruned=self.pruned)
            )

    def held_claim(self, connection_id: str, events: Sequence[Event]) -> Claim:
        return _HeldClaim(self, connection_id, events)

    def number(self, connection_id: str) -> int:
        """The connection's number in the event rows, added in a transaction of its own (not
        in a claim's: runs claiming for one connection would wait on each other's)."""
        number = self._numbers.get(connection_id)
        if number is None:
            with self.writing(), self.engine.begin() as connection:
                add = _dialect_insert(connection, CONNECTIONS).values(connection_id=connection_id)
                connection.execute(add.on_conflict_do_nothing())
                number = connection.execute(
                    sa.select(CONNECTIONS.c.id).where(CONNECTIONS.c.connection_id == connection_id)
                ).scalar_one()
            self._numbers[connection_id] = number
        return number

    def delivered(self, connection_id: str, event_ids: Sequence[str]) -> frozenset[str]:
        if not event_ids:
            return frozenset()
        if self._events is not None:  # a dry run: the first layout too, as it is
            events = self._events
            query = sa.select(events.c.event_id).where(events.c.connection_id == connection_id)
        else:
            query = (
                sa.select(EVENTS.c.event_id)
                .join(CONNECTIONS, CONNECTIONS.c.id == EVENTS.c.connection)
                .where(CONNECTIONS.c.connection_id == connection_id)
            )
            events = EVENTS
        query = query.where(events.c.event_id.in_(sorted(set(event_ids))))
        with self.reading(), self.engine.connect() as connection:
            return frozenset(connection.execute(query).scalars())

    def record(
        self, connection_id: str, events: Sequence[Event], status: int, answer: str
    ) -> None:
        if self.read_only or not events:
            return
        number = self.number(connection_id)
        with self.writing(), self.engine.begin() as connection:
            request_id = _insert_request(
                connection, self.run_id, connection_id, status, answer, len(events)
            )
            _write_events(connection, number, events, request_id, replace=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def reading(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(self.unreadable(exc)) from None

    @contextmanager
    def writing(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(self.unwritable(exc)) from None


class _HeldClaim(Claim):
    """Rows inserted before sending, in a transaction held until the answer (PostgreSQL).

    Another run's request holding the same ids makes the insert wait until it is over; ids
    that are then found were delivered, and are left out.
    """

    def __init__(
        self, ledger: ServerLedger, connection_id: str, events: Sequence[Event]
    ) -> None:
        self._ledger = ledger
        self._connection_id = connection_id
        self._number = ledger.number(connection_id)
        self._recorded: set[str] = set()
        self._connection = ledger.engine.connect()
        try:
            with ledger.writing():
                self._transaction = self._connection.begin()
                self._request_id = _insert_request(
                    self._connection, ledger.run_id, connection_id, None, "claimed", len(events)
                )
                self._claimed = _write_events(
                    self._connection, self._number, events, self._request_id, replace=False
                )
        except BaseException:
            self._connection.close()
            raise
        self.skip = frozenset(event_id for event_id, _ in events) - self._claimed

    def record(self, events: Sequence[Event], status: int, answer: str) -> None:
        ids = {event_id for event_id, _ in events}
        with self._ledger.writing():
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
                        EVENTS.c.connection == self._number,
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
            with self._ledger.writing():
                self._release(self._claimed - self._recorded)
                self._transaction.commit()
        finally:
            self._connection.close()

    def _release(self, refused: Set[str]) -> None:
        """Events the API refused (or that were never sent) are not delivered."""
        if refused:
            self._connection.execute(
                sa.delete(EVENTS).where(
                    EVENTS.c.connection == self._number,
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


def _dialect_insert(connection: sa.engine.Connection, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT (PostgreSQL's, or SQLite's)."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


def _write_events(
    connection: sa.engine.Connection,
    number: int,
    events: Sequence[Event],
    request_id: int,
    *,
    replace: bool,
) -> frozenset[str]:
    """Insert the events' rows in sorted order; the ids this statement inserted (`replace`:
    all, rows already there now pointing to this request)."""
    rows = {
        event_id: {
            "connection": number,
            "event_id": event_id,
            "event_time_ms": time_ms(event_time),
            "request_id": request_id,
        }
        for event_id, event_time in events
    }
    values = [rows[event_id] for event_id in sorted(rows)]
    if not values:
        return frozenset()
    insert = _dialect_insert(connection, EVENTS)
    if replace:
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=[EVENTS.c.connection, EVENTS.c.event_id],
                set_={"request_id": insert.excluded.request_id,
                      "event_time_ms": insert.excluded.event_time_ms},
            ),
            values,
        )
        return frozenset(rows)
    inserted = connection.execute(
        insert.values(values).on_conflict_do_nothing().returning(EVENTS.c.event_id)
    )
    return frozenset(inserted.scalars())


# The first layout (earlier builds): the connection's id and the time's text in every event
# row, in ledger_events (and ledger_pending, which a server's ledger never filled).
_FIRST_LAYOUT = tuple(FIRST_LAYOUT_TABLES)
_FIRST_LAYOUT_COLUMNS = ("connection_id", "event_id", "event_time", "request_id")
_MOVE_FIRST_LAYOUT = (
    "INSERT INTO ledger_connections (connection_id) SELECT DISTINCT connection_id FROM {table} "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO ledger_delivered (connection, event_id, event_time_ms, request_id) "
    "SELECT c.id, t.event_id, "
    "CASE WHEN t.event_time ~ '^\\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$' THEN "
    "CAST(round(EXTRACT(EPOCH FROM CAST(t.event_time AS TIMESTAMPTZ)) * 1000) AS BIGINT) END, "
    "t.request_id FROM {table} AS t JOIN ledger_connections AS c "
    "ON c.connection_id = t.connection_id ON CONFLICT DO NOTHING",
    "DROP TABLE {table}",
)
# Runs starting at once on a ledger of the first layout take turns to move it (a PostgreSQL
# advisory lock, held until the transaction ends); the later ones find nothing left to move.
_MOVE_LOCK = 7_305_160_022


def _move_first_layout(connection: sa.engine.Connection) -> None:
    """Move a server ledger's rows of the first layout into this layout's tables, once (the
    first layout's tables are dropped)."""
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MOVE_LOCK})
    names = set(sa.inspect(connection).get_table_names())
    for table in _FIRST_LAYOUT:
        if table in names:
            for statement in _MOVE_FIRST_LAYOUT:
                connection.execute(sa.text(statement.format(table=table)))


def _prune(connection: sa.engine.Connection, before: int) -> int:
    """Delete the rows of requests answered before `before`; how many events went."""
    old = sa.select(REQUESTS.c.id).where(REQUESTS.c.sent_at < before)
    pruned = connection.execute(sa.delete(EVENTS).where(EVENTS.c.request_id.in_(old))).rowcount
    connection.execute(sa.delete(REQUESTS).where(REQUESTS.c.sent_at < before))
    connection.execute(sa.delete(RUNS).where(RUNS.c.started_at < before))
    return int(pruned or 0)


# --- asking the ledger (the spotify-conversions-ledger command) --------------------------------


def _all_events(connection: sa.engine.Connection) -> Any:
    """Every event row, by connection id: the keyed rows, the rows a running (or died) run has
    not merged yet, and rows of the first layout that no run of this version has moved (a file
    an earlier build wrote to, or one whose move was cut short). A time is in one of two
    columns: milliseconds, or the first layout's text."""
    names = set(sa.inspect(connection).get_table_names())
    selects = [
        sa.select(
            CONNECTIONS.c.connection_id,
            table.c.event_id,
            table.c.event_time_ms,
            sa.cast(sa.null(), sa.String).label("event_time_text"),
            table.c.request_id,
        ).join(CONNECTIONS, CONNECTIONS.c.id == table.c.connection)
        for table in (EVENTS, PENDING)
        if table.name in names
    ]
    for name in _FIRST_LAYOUT:
        if name in names:
            first = sa.table(name, *map(sa.column, _FIRST_LAYOUT_COLUMNS))
            selects.append(sa.select(
                first.c.connection_id,
                first.c.event_id,
                sa.cast(sa.null(), sa.BigInteger).label("event_time_ms"),
                first.c.event_time.label("event_time_text"),
                first.c.request_id,
            ))
    if not selects:
        raise sa.exc.NoSuchTableError(EVENTS.name)
    return sa.union_all(*selects).subquery("all_events")


def lookup(engine: sa.engine.Engine, event_id: str) -> list[dict[str, Any]]:
    """What the ledger knows of one event id, for each connection it was delivered to."""
    with engine.connect() as connection:
        rows = connection.execute(_lookup_query(_all_events(connection), event_id)).all()
    latest = {}
    for row in rows:  # per connection, the newest request (a resend's)
        found = dict(row._mapping)
        ms, text = found.pop("event_time_ms"), found.pop("event_time_text")
        as_sent = time_text(ms) if ms is not None else text if isinstance(text, str) else None
        latest[row.connection_id] = {**found, "event_time": as_sent}
    return list(latest.values())


def _lookup_query(events: Any, event_id: str) -> Any:
    return (
        sa.select(
            events.c.connection_id,
            events.c.event_id,
            events.c.event_time_ms,
            events.c.event_time_text,
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
    with engine.connect() as connection:
        all_events = _all_events(connection)
        events = sa.select(
            all_events.c.connection_id, sa.func.count(sa.distinct(all_events.c.event_id))
        ).group_by(all_events.c.connection_id)
        counts = dict(connection.execute(events).tuples().all())
        connections = [
            {**row._mapping, "events": counts.get(row.connection_id, 0)}
            for row in connection.execute(per_connection)
        ]
        runs = connection.execute(
            sa.select(sa.func.count(), sa.func.max(RUNS.c.started_at))
        ).one()
    return {"connections": connections, "runs": runs[0], "last_run_started_at": runs[1]}
