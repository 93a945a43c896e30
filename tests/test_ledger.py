"""The delivery ledger on its own (SQLite files in a temporary directory): what a claim leaves
out, what a record keeps, pruning, and a ledger that cannot be used failing at open."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from target_spotify_conversions import ledger as ledger_module
from target_spotify_conversions.ledger import Ledger, LedgerError
from target_spotify_conversions.ledger_open import open_ledger as open_url
from target_spotify_conversions.ledger_sql import EVENTS, REQUESTS, lookup, stats
from tests.harness import CONNECTION_ID

OTHER_CONNECTION = "0d2c4b6a-1e3f-4a5b-8c7d-9e0f1a2b3c4d"


WHEN = "2026-11-01T10:00:00.000Z"


def events(*ids: str) -> list[tuple[str, str]]:
    """(event_id, event_time) of each event, as delivery hands a request's events over."""
    return [(event_id, WHEN) for event_id in ids]


def open_ledger(tmp_path, run_id: str = "run-1", **options) -> Ledger:
    opened = open_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}", run_id=run_id, **options)
    assert isinstance(opened, Ledger)
    return opened


def test_acknowledged_events_are_left_out_of_the_next_request_to_the_same_connection(tmp_path):
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("a", "b", "c")) as claim:
        assert claim.skip == frozenset()
        claim.record(events("a", "b"), 200, "SUCCESS (sp_trace_id t-1)")  # c: refused
    ledger.close()
    later = open_ledger(tmp_path, "run-2")  # the next run
    with later.claim(CONNECTION_ID, events("a", "b", "c", "d")) as claim:
        assert claim.skip == {"a", "b"}
    with later.claim(OTHER_CONNECTION, events("a", "b")) as claim:
        assert claim.skip == frozenset(), "another connection has its own record"
    later.close()


def test_what_a_run_that_died_acknowledged_is_left_out_by_the_next(tmp_path):
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("a", "b")) as claim:
        claim.record(events("a", "b"), 200, "SUCCESS")
    # no close(): the run was killed; its acknowledgements are on disk, not yet merged
    assert len(lookup(ledger.engine, "a")) == 1, "the ledger command sees them already"
    dry = open_ledger(tmp_path, "run-2", read_only=True)  # a dry run cannot merge them
    with dry.claim(CONNECTION_ID, events("a", "b", "c")) as claim:
        assert claim.skip == {"a", "b"}
    dry.close()
    later = open_ledger(tmp_path, "run-3")
    with later.claim(CONNECTION_ID, events("a", "b", "c")) as claim:
        assert claim.skip == {"a", "b"}
    later.close()



@pytest.mark.parametrize("connections", [1, 3, 6])  # merged one by one up to 4, then at once
def test_the_merge_keeps_every_connection_apart_and_the_latest_row_of_an_event(
    tmp_path, connections
):
    ids = [f"0d2c4b6a-1e3f-4a5b-8c7d-9e0f1a2b3c{n:02d}" for n in range(connections)]
    ledger = open_ledger(tmp_path)
    for number, connection in enumerate(ids):
        with ledger.claim(connection, events("a", f"only-{number}")) as claim:
            claim.record(events("a", f"only-{number}"), 200, "first")
    with ledger.claim(ids[0], events("a")) as claim:  # "a" again: the later request wins
        claim.record([("a", "2026-11-02T10:00:00.000Z")], 200, "again")
    ledger.close()
    later = open_ledger(tmp_path, "run-2")
    for number, connection in enumerate(ids):
        with later.claim(connection, events("a", f"only-{number}", "only-x")) as claim:
            assert claim.skip == {"a", f"only-{number}"}
    later.close()
    found = {(row["connection_id"], row["event_time"]) for row in lookup(later.engine, "a")}
    assert (ids[0], "2026-11-02T10:00:00.000Z") in found
    assert len(found) == connections


@pytest.mark.parametrize("query", ["?timeout=5", "?mode=rwc&uri=true"])
def test_a_url_with_a_query_gives_every_request_thread_its_own_connection(tmp_path, query):
    """Each request thread keeps a connection for the run: more threads than a pool holds
    must not wait for one (a pool of 4 and 4 more held the ninth 30 s, then failed)."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}{query}"
    if "uri=true" in query:
        url = f"sqlite:///file:{tmp_path / 'ledger.sqlite'}{query}"
    ledger = open_url(url, run_id="run-1")
    assert isinstance(ledger, Ledger)
    started = time.monotonic()
    for number in range(12):  # one after another, each on its own thread and connection
        ids = (f"t{number}-a", f"t{number}-b")

        def deliver(ids: tuple[str, ...] = ids) -> None:
            with ledger.claim(CONNECTION_ID, events(*ids)) as claim:
                claim.record(events(*ids), 200, "SUCCESS")

        thread = threading.Thread(target=deliver)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), f"thread {number} waited for a connection"
    assert time.monotonic() - started < 10
    ledger.close()
    later = open_url(url, run_id="run-2")
    with later.claim(CONNECTION_ID, events("t0-a", "t11-b", "new")) as claim:
        assert claim.skip == {"t0-a", "t11-b"}
    later.close()


def test_a_connection_the_file_held_nothing_of_is_not_looked_up_again_in_that_run(tmp_path):
    """A first run to a connection (a backfill) looks nothing up. What another run sharing
    the file merges meanwhile is then not seen, as two such runs miss each other's appended
    rows anyway; the next run sees it."""
    first = open_ledger(tmp_path, "run-1")
    with first.claim(CONNECTION_ID, events("a")) as claim:
        assert claim.skip == frozenset()
    other = open_ledger(tmp_path, "run-2")
    with other.claim(CONNECTION_ID, events("a")) as claim:
        claim.record(events("a"), 200, "SUCCESS")
    other.close()  # merged: the file now holds "a"
    with first.claim(CONNECTION_ID, events("a")) as claim:
        assert claim.skip == frozenset(), "not looked up again within run-1"
    first.close()
    later = open_ledger(tmp_path, "run-3")
    with later.claim(CONNECTION_ID, events("a", "b")) as claim:
        assert claim.skip == {"a"}
    with later.claim(OTHER_CONNECTION, events("a")) as claim:
        assert claim.skip == frozenset()
    later.close()

def test_a_record_keeps_the_event_time_the_request_and_the_answer_but_nothing_personal(tmp_path):
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("ord-1")) as claim:
        claim.record([("ord-1", "2026-10-31T23:59:59.123Z")], 200,
                     "SUCCESS (sp_trace_id abc123)")
    before = int(time.time())
    [row] = lookup(ledger.engine, "ord-1")
    assert row["connection_id"] == CONNECTION_ID
    assert row["event_time"] == "2026-10-31T23:59:59.123Z"
    assert row["status"] == 200
    assert row["answer"] == "SUCCESS (sp_trace_id abc123)"
    assert row["run_id"] == "run-1"
    assert row["request_events"] == 1
    assert before - 5 <= row["sent_at"] <= before + 5
    with ledger.engine.connect() as connection:
        columns = {c["name"] for t in ("ledger_delivered", "ledger_connections",
                                       "ledger_requests", "ledger_runs")
                   for c in sa.inspect(connection).get_columns(t)}
    assert not {"body", "user_data", "hashed_emails", "email", "token"} & columns
    ledger.close()


def test_a_resend_on_purpose_leaves_nothing_out_and_records_the_new_request(tmp_path):
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("a")) as claim:
        claim.record(events("a"), 200, "first")
    ledger.close()
    again = open_ledger(tmp_path, "run-2", resend=True)
    with again.claim(CONNECTION_ID, events("a")) as claim:
        assert claim.skip == frozenset()
        claim.record(events("a"), 202, "second")
    [row] = lookup(again.engine, "a")
    assert (row["status"], row["answer"]) == (202, "second")
    again.close()


def test_rows_older_than_the_retention_are_pruned_at_open(tmp_path):
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("old", "new")) as claim:
        claim.record(events("old"), 200, "SUCCESS")
    with ledger.claim(CONNECTION_ID, events("new")) as claim:
        claim.record(events("new"), 200, "SUCCESS")
    with ledger.engine.begin() as connection:  # the first request was answered 40 days ago
        connection.execute(sa.update(REQUESTS).where(REQUESTS.c.id == 1)
                           .values(sent_at=int(time.time()) - 40 * 86_400))
    ledger.close()
    kept = open_ledger(tmp_path, "run-2", retention_days=30)
    assert kept.pruned == 1
    assert lookup(kept.engine, "old") == []
    assert len(lookup(kept.engine, "new")) == 1
    with kept.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(REQUESTS)).scalar() == 1
    kept.close()
    forever = open_ledger(tmp_path, "run-3", retention_days=0)
    assert forever.pruned == 0
    forever.close()


def test_a_read_only_open_creates_nothing_and_writes_nothing(tmp_path):
    assert open_url(f"sqlite:///{tmp_path / 'none.sqlite'}", run_id="r",
                       read_only=True) is None
    assert not (tmp_path / "none.sqlite").exists()
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("a")) as claim:
        claim.record(events("a"), 200, "SUCCESS")
    ledger.close()
    reader = open_ledger(tmp_path, "run-2", read_only=True)
    with reader.claim(CONNECTION_ID, events("a", "b")) as claim:
        assert claim.skip == {"a"}
        claim.record(events("b"), 200, "SUCCESS")  # a dry run "acknowledges": not kept
    assert lookup(reader.engine, "b") == []
    reader.close()


def test_a_corrupt_file_fails_at_open(tmp_path):
    (tmp_path / "ledger.sqlite").write_bytes(b"this is no SQLite database, " * 200)
    with pytest.raises(LedgerError) as failure:
        open_ledger(tmp_path)
    message = str(failure.value)
    assert "SQLite file" in message
    assert "not a database" in message
    assert "SELECT" not in message
    assert "INSERT" not in message


def test_a_url_with_a_password_is_never_repeated(tmp_path):
    secret = "pw-9d8e7f6a"
    with pytest.raises(LedgerError) as failure:
        open_url(f"nosuchdb://user:{secret}@localhost/db", run_id="r")
    assert secret not in str(failure.value)
    assert ledger_module.describe(f"postgresql+psycopg://u:{secret}@h/db") == (
        "postgresql+psycopg://u:***@h/db"
    )


def test_a_password_in_the_query_of_a_url_is_never_repeated():
    """Found by an attack: `?password=` (a form libpq and SQLAlchemy read) was shown whole."""
    secret = "4f3c2a9b8d7e6f5a"
    url = f"postgresql+psycopg://app@db.example:5432/ledger?password={secret}&sslmode=require"
    assert ledger_module.describe(url) == (
        "postgresql+psycopg://app@db.example:5432/ledger?password=***&sslmode=***"
    )
    with pytest.raises(LedgerError) as failure:
        open_url(url.replace("postgresql+psycopg", "nosuchdb"), run_id="r")
    assert secret not in str(failure.value)


def test_a_write_that_fails_midway_is_a_ledger_error_not_a_crash(tmp_path):
    ledger = open_ledger(tmp_path)
    with sqlite3.connect(tmp_path / "ledger.sqlite") as raw:
        raw.execute("DROP TABLE ledger_appended")
    with pytest.raises(LedgerError, match=r"could not be written"), \
            ledger.claim(CONNECTION_ID, events("a")) as claim:
        claim.record(events("a"), 200, "SUCCESS")
    with pytest.raises(LedgerError, match=r"could not be written"):
        ledger.close()


def test_stats_count_events_and_requests_per_connection(tmp_path):
    ledger = open_ledger(tmp_path)
    for connection_id, ids in ((CONNECTION_ID, ("a", "b", "c")), (OTHER_CONNECTION, ("a",))):
        with ledger.claim(connection_id, events(*ids)) as claim:
            claim.record(events(*ids), 200, "SUCCESS")
    for found in (stats(ledger.engine), None):  # before and after the run's rows are merged
        if found is None:
            ledger.close()
            ledger = open_ledger(tmp_path, "run-2")
            found = stats(ledger.engine)
            with ledger.engine.connect() as connection:
                count = sa.select(sa.func.count()).select_from(EVENTS)
                assert connection.execute(count).scalar() == 4
        by_connection = {row["connection_id"]: row for row in found["connections"]}
        assert by_connection[CONNECTION_ID]["events"] == 3
        assert by_connection[OTHER_CONNECTION]["events"] == 1
        assert by_connection[CONNECTION_ID]["requests"] == 1
    assert found["runs"] == 2
    ledger.close()


def test_runs_starting_at_once_on_a_new_ledger_all_open_it(tmp_path):
    """Each finds the tables missing and creates them: the losers of that race go on."""
    for opened in open_at_once(f"sqlite:///{tmp_path / 'ledger.sqlite'}", 6):
        opened.close()


def test_a_run_waits_for_another_writing_to_a_new_ledger_before_setting_wal(tmp_path):
    """SQLite refuses WAL mode at once ("database is locked", no busy timeout) while another
    connection writes to a file still in its first mode: runs starting together on a new
    ledger failed so, about once in thirty."""
    path = tmp_path / "ledger.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE elsewhere (a)")  # a write under way, not yet in WAL mode
    threading.Timer(0.3, other.execute, ("COMMIT",)).start()
    began = time.monotonic()
    ledger = open_ledger(tmp_path)
    assert time.monotonic() - began >= 0.25  # it waited for the write to end
    ledger.close()
    other.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def open_at_once(url: str, runs: int) -> list[Ledger]:
    """The ledger opened by `runs` threads let go at the same moment; every one opened it."""
    start = threading.Barrier(runs)
    opened: list[Ledger] = []
    failures: list[BaseException] = []

    def open_one(number: int) -> None:
        start.wait()
        try:
            ledger = open_url(url, run_id=f"run-{number}")
            assert isinstance(ledger, Ledger)
            opened.append(ledger)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return opened


def test_a_sqlite_ledger_has_the_tables_the_schema_describes(tmp_path):
    """ledger.py creates SQLite's tables in its own words (no SQLAlchemy in a run); they are
    the tables ledger_sql.METADATA describes, which a server's ledger and the command use."""
    from target_spotify_conversions.ledger_sql import METADATA

    open_ledger(tmp_path).close()
    described = sa.create_engine(f"sqlite:///{tmp_path / 'described.sqlite'}")
    METADATA.create_all(described)
    described.dispose()

    def shape(path):
        with sqlite3.connect(path) as raw:
            tables = sorted(row[0] for row in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))
            return {table: (raw.execute(f"PRAGMA table_xinfo({table})").fetchall(),
                            sorted(row[1:] for row in raw.execute(f"PRAGMA index_list({table})")),
                            raw.execute(f"SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master "
                                        f"WHERE name = '{table}'").fetchone())
                    for table in tables}

    assert shape(tmp_path / "ledger.sqlite") == shape(tmp_path / "described.sqlite")


def test_a_run_on_a_sqlite_ledger_never_loads_sqlalchemy(tmp_path):
    """Loading it took 0.17 s of every run."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from target_spotify_conversions.ledger_open import open_ledger\n"
        f"ledger = open_ledger('sqlite:///{tmp_path / 'l.sqlite'}', run_id='r')\n"
        "with ledger.claim('c', [('a', 't')]) as claim:\n"
        "    claim.record([('a', 't')], 200, 'OK')\n"
        "ledger.close()\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["pct%20x.sqlite", "ha#sh.sqlite", "sp ace.sqlite"])
def test_every_form_of_a_url_opens_the_same_file(tmp_path, name):
    """A plain URL, one with a query (SQLAlchemy opens it) and the ledger command's read-only
    engine all name one file: `%20` and `#` are part of its name."""
    plain = f"sqlite:///{tmp_path / name}"
    ledger = open_url(plain, run_id="run-1")
    with ledger.claim(CONNECTION_ID, events("a")) as claim:
        claim.record(events("a"), 200, "SUCCESS")
    ledger.close()
    assert [path.name for path in tmp_path.iterdir()] == [name]
    with_query = open_url(plain + "?timeout=5", run_id="run-2")
    with with_query.claim(CONNECTION_ID, events("a", "b")) as claim:
        assert claim.skip == {"a"}
    with_query.close()
    reader = open_url(plain, run_id="run-3", read_only=True)
    assert len(lookup(reader.engine, "a")) == 1
    assert stats(reader.engine)["runs"] == 2
    reader.close()
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_a_dry_run_reads_a_closed_ledger_without_writing_beside_it(tmp_path):
    """No -wal or -shm file appears, and a directory it may not write to is no obstacle."""
    import os
    import stat

    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("a")) as claim:
        claim.record(events("a"), 200, "SUCCESS")
    ledger.close()
    before = sorted(path.name for path in tmp_path.iterdir())
    os.chmod(tmp_path, stat.S_IRUSR | stat.S_IXUSR)
    try:
        reader = open_ledger(tmp_path, "run-2", read_only=True)
        with reader.claim(CONNECTION_ID, events("a", "b")) as claim:
            assert claim.skip == {"a"}
        reader.close()
    finally:
        os.chmod(tmp_path, stat.S_IRWXU)
    assert sorted(path.name for path in tmp_path.iterdir()) == before


@pytest.mark.parametrize("url", [
    "sqlite:///file::memory:?uri=true",
    "sqlite:///file:x.sqlite?mode=memory&uri=true",
    "sqlite://",
    "sqlite:///:memory:",
])
def test_an_in_memory_ledger_is_refused_at_open(url):
    with pytest.raises(LedgerError, match="in-memory SQLite ledger remembers nothing"):
        open_url(url, run_id="r")


def test_a_ledger_that_cannot_be_placed_or_driven_is_refused_naming_ledger_url(tmp_path):
    (tmp_path / "plain").write_text("a file, not a folder")
    with pytest.raises(LedgerError, match=r"ledger_url: cannot use .*its folder cannot be made"):
        open_url(f"sqlite:///{tmp_path / 'plain' / 'x.sqlite'}", run_id="r")
    with pytest.raises(LedgerError, match=r"ledger_url: cannot use .*driver is not installed"):
        open_url(f"sqlite+nosuchdriver:///{tmp_path / 'x.sqlite'}", run_id="r")


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_ledger_that_is_no_regular_file_is_refused_saying_what_it_is(tmp_path, kind, read_only):
    """Found by an attack: a FIFO opened to read (a dry run, the ledger command) waited for a
    writer for ever, and a stop signal did not end the wait; to write, it failed with "disk
    I/O error". Refused before SQLite opens anything."""
    path = {"fifo": tmp_path / "ledger", "directory": tmp_path, "device": Path(os.devnull)}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    shown = {"fifo": "a FIFO (named pipe)", "directory": "a directory", "device": "a device"}
    for url in (f"sqlite:///{path}", f"sqlite+pysqlite:///{path}?timeout=5"):
        with pytest.raises(LedgerError, match=rf"^ledger_url: cannot use SQLite file {path}: it "
                                              rf"is {re.escape(shown[kind])}, not a regular"):
            open_url(url, run_id="r", read_only=read_only)


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
def test_a_side_file_that_is_no_regular_file_is_refused_before_sqlite_opens_it(
    tmp_path, suffix, read_only
):
    """Found by an attack: a FIFO at NAME-journal hung a run that writes for good (SQLite
    opened it and waited for a writer), deaf to SIGTERM."""
    open_ledger(tmp_path).close()  # a ledger with events' tables, closed
    side = tmp_path / f"ledger.sqlite{suffix}"
    side.unlink(missing_ok=True)
    os.mkfifo(side)
    with pytest.raises(LedgerError, match=rf"ledger.sqlite{suffix} beside it is a FIFO \(named "
                                          r"pipe\), not a regular file"):
        open_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}", run_id="r", read_only=read_only)


def test_a_side_file_beside_a_linked_ledger_is_checked_where_sqlite_opens_it(tmp_path):
    """Found by an attack: SQLite opens the side files beside the file a link leads to, and a
    FIFO there hung the run as one beside the link did."""
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    open_url(f"sqlite:///{tmp_path / 'real' / 'ledger.sqlite'}", run_id="r").close()
    os.mkfifo(tmp_path / "real" / "ledger.sqlite-journal")
    (tmp_path / "links" / "ledger.sqlite").symlink_to(tmp_path / "real" / "ledger.sqlite")
    with pytest.raises(LedgerError, match=r"real/ledger.sqlite-journal beside it is a FIFO"):
        open_url(f"sqlite:///{tmp_path / 'links' / 'ledger.sqlite'}", run_id="r")


@pytest.mark.parametrize("spare", [0, 1, 7])
def test_a_ledger_name_without_room_for_sqlites_side_files_is_refused_saying_why(tmp_path, spare):
    """Found by an attack: within 8 bytes of the file system's limit, SQLite made the file,
    then failed on NAME-journal with its bare "unable to open database file". The message
    shows the file, never the password a URL may carry."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    name = "l" * (limit - spare)
    for url in (f"sqlite:///{tmp_path / name}", f"sqlite://user:s3cret-pw@/{tmp_path / name}"):
        with pytest.raises(LedgerError) as refused:
            open_url(url, run_id="r")
        message = str(refused.value)
        assert message.startswith(f"ledger_url: cannot use SQLite file {tmp_path / name}: its "
                                  "name is too long for SQLite's side files: NAME-journal")
        assert f"give a name of at most {limit - 8} bytes" in message
        assert "unable to open" not in message
        assert "s3cret-pw" not in message
    assert list(tmp_path.iterdir()) == []  # refused before SQLite made the file
    assert open_url(f"sqlite:///{tmp_path / name}", run_id="r", read_only=True) is None
    fits = open_url(f"sqlite:///{tmp_path / ('l' * (limit - 8))}", run_id="r")
    assert isinstance(fits, Ledger)
    fits.close()


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_ledger_path_through_a_link_to_nothing_is_refused(tmp_path, read_only, where):
    """A volume not mounted, a folder moved: refused as the other outputs are, not created
    where the link points (or failed on with "unable to open database file"), and a dry run
    does not take the missing ledger for an empty one."""
    link = tmp_path / "ledger"
    link.symlink_to(tmp_path / "unmounted" / "ledger")
    path = link if where == "file" else link / "new" / "ledger.sqlite"
    for url in (f"sqlite:///{path}", f"sqlite+pysqlite:///{path}?timeout=5"):
        with pytest.raises(LedgerError, match=rf"^ledger_url: '{link}' is a symbolic link to "
                                              rf"'{tmp_path}/unmounted/ledger', which does not"):
            open_url(url, run_id="r", read_only=read_only)
    assert not (tmp_path / "unmounted").exists()


# The first layout, as earlier builds wrote it: the connection's id and the time's text in
# every event row.
FIRST_LAYOUT = (
    "CREATE TABLE ledger_events (connection_id VARCHAR(36) NOT NULL, event_id VARCHAR NOT NULL, "
    "event_time VARCHAR(40) NOT NULL, request_id INTEGER NOT NULL, "
    "PRIMARY KEY (connection_id, event_id)) WITHOUT ROWID",
    "CREATE TABLE ledger_pending (connection_id VARCHAR(36) NOT NULL, event_id VARCHAR NOT NULL, "
    "event_time VARCHAR(40) NOT NULL, request_id INTEGER NOT NULL)",
    "CREATE TABLE ledger_requests (id INTEGER NOT NULL, connection_id VARCHAR(36) NOT NULL, "
    "run_id VARCHAR(36) NOT NULL, sent_at BIGINT NOT NULL, status INTEGER, "
    "answer VARCHAR(400), events INTEGER NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_ledger_requests_sent_at ON ledger_requests (sent_at)",
    "CREATE TABLE ledger_runs (run_id VARCHAR(36) NOT NULL, started_at BIGINT NOT NULL, "
    "pruned INTEGER NOT NULL, PRIMARY KEY (run_id))",
)


def first_layout_file(tmp_path) -> None:
    """A ledger an earlier build left: events a and b merged, b again and c appended by a run
    that was killed (the later row of b wins)."""
    now = int(time.time())
    with sqlite3.connect(tmp_path / "ledger.sqlite") as raw:
        for statement in FIRST_LAYOUT:
            raw.execute(statement)
        raw.executemany(
            "INSERT INTO ledger_requests VALUES (?, ?, 'old-run', ?, 200, ?, ?)",
            [(1, CONNECTION_ID, now, "first", 2), (2, CONNECTION_ID, now, "second", 2),
             (3, OTHER_CONNECTION, now, "other", 1)],
        )
        raw.executemany("INSERT INTO ledger_events VALUES (?, ?, ?, ?)", [
            (CONNECTION_ID, "a", "2026-10-31T23:59:59.123Z", 1),
            (CONNECTION_ID, "b", "2026-10-31T23:59:59.123Z", 1),
            (OTHER_CONNECTION, "a", "2026-11-02T00:00:00.000Z", 3),
            (OTHER_CONNECTION, "j", "2459000.5", 3),  # no time as sent: kept without one
        ])
        raw.executemany("INSERT INTO ledger_pending VALUES (?, ?, ?, ?)", [
            (CONNECTION_ID, "b", "2026-11-01T08:00:00.001Z", 2),
            (CONNECTION_ID, "c", "2026-11-01T08:00:00.002Z", 2),
        ])
        raw.execute("INSERT INTO ledger_runs VALUES ('old-run', ?, 0)", (now,))


def test_a_ledger_of_the_first_layout_is_read_as_it_is_and_moved_by_the_next_run(tmp_path):
    first_layout_file(tmp_path)
    dry = open_ledger(tmp_path, "dry", read_only=True)  # reads it, cannot move it
    with dry.claim(CONNECTION_ID, events("a", "b", "c", "d")) as claim:
        assert claim.skip == {"a", "b", "c"}
    with dry.claim("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", events("a")) as claim:
        assert claim.skip == frozenset()
    assert lookup(dry.engine, "b")[0]["event_time"] == "2026-11-01T08:00:00.001Z"
    assert {row["connection_id"]: row["events"] for row in stats(dry.engine)["connections"]} \
        == {CONNECTION_ID: 3, OTHER_CONNECTION: 2}
    dry.close()

    run = open_ledger(tmp_path, "run-2")  # moves the rows, once
    with run.claim(CONNECTION_ID, events("a", "b", "c", "d")) as claim:
        assert claim.skip == {"a", "b", "c"}
        claim.record(events("d"), 200, "SUCCESS")
    with run.claim(OTHER_CONNECTION, events("a", "b")) as claim:
        assert claim.skip == {"a"}
    run.close()
    with sqlite3.connect(tmp_path / "ledger.sqlite") as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert not {"ledger_events", "ledger_pending"} & tables
    later = open_ledger(tmp_path, "run-3")
    [b] = lookup(later.engine, "b")
    assert (b["event_time"], b["answer"]) == ("2026-11-01T08:00:00.001Z", "second")
    times = {row["connection_id"]: row["event_time"] for row in lookup(later.engine, "a")}
    assert times == {CONNECTION_ID: "2026-10-31T23:59:59.123Z",
                     OTHER_CONNECTION: "2026-11-02T00:00:00.000Z"}
    assert lookup(later.engine, "d")[0]["event_time"] == WHEN
    assert lookup(later.engine, "j")[0]["event_time"] is None
    later.close()


@pytest.mark.parametrize("sent", [
    "2026-11-01T10:00:00.000Z", "2026-10-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z",
    "1969-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z",
    "2024-02-29T12:34:56.789Z",
])
def test_an_event_time_is_kept_in_milliseconds_and_read_back_as_sent(tmp_path, sent):
    """SQLite's reading (a run's rows) and Python's (a server's, the command's) agree."""
    assert ledger_module.time_text(ledger_module.time_ms(sent)) == sent
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("e")) as claim:
        claim.record([("e", sent)], 200, "SUCCESS")
    ledger.close()
    with sqlite3.connect(tmp_path / "ledger.sqlite") as raw:
        [(kept,)] = raw.execute("SELECT event_time_ms FROM ledger_delivered").fetchall()
    assert kept == ledger_module.time_ms(sent)
    later = open_ledger(tmp_path, "run-2", read_only=True)
    assert lookup(later.engine, "e")[0]["event_time"] == sent
    later.close()


def test_a_time_the_ledger_cannot_read_is_kept_as_unknown_not_a_failed_write(tmp_path):
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events("e")) as claim:
        claim.record([("e", "not a time")], 200, "SUCCESS")
    ledger.close()
    later = open_ledger(tmp_path, "run-2")
    with later.claim(CONNECTION_ID, events("e")) as claim:
        assert claim.skip == {"e"}
    assert lookup(later.engine, "e")[0]["event_time"] is None
    later.close()


@pytest.mark.parametrize("how", ["a run killed while moving it", "an earlier build went back"])
def test_a_ledger_holding_both_layouts_is_read_whole_until_a_run_moves_it(tmp_path, how):
    """A run creates this layout's tables before it moves the first layout's rows; killed in
    between (or when an earlier build writes to the file again), the file holds both."""
    if how == "an earlier build went back":
        ledger = open_ledger(tmp_path, "later-build")
        with ledger.claim(CONNECTION_ID, events("x")) as claim:
            claim.record(events("x"), 200, "SUCCESS")
        ledger.close()
        with sqlite3.connect(tmp_path / "ledger.sqlite") as raw:
            raw.execute("DROP TABLE ledger_requests")
            raw.execute("DROP TABLE ledger_runs")
        first_layout_file(tmp_path)
    else:
        first_layout_file(tmp_path)
        with sqlite3.connect(tmp_path / "ledger.sqlite") as raw:
            for statement in ledger_module._SQLITE_TABLES:
                raw.execute(statement)
    held = {"a", "b", "c"} | ({"x"} if how == "an earlier build went back" else set())
    dry = open_ledger(tmp_path, "dry", read_only=True)
    with dry.claim(CONNECTION_ID, events("a", "b", "c", "d", "x")) as claim:
        assert claim.skip == held
    assert lookup(dry.engine, "b")[0]["event_time"] == "2026-11-01T08:00:00.001Z"
    counts = {row["connection_id"]: row["events"] for row in stats(dry.engine)["connections"]}
    assert counts[CONNECTION_ID] == len(held)
    dry.close()
    run = open_ledger(tmp_path, "run-2")
    with run.claim(CONNECTION_ID, events("a", "b", "c", "d", "x")) as claim:
        assert claim.skip == held
    run.close()


TRICKY_IDS = ['a"b', "a\\b", "é", "\x01ctl", "😀", "tab\there", "nl\nx", "\u2028", "sp ace",
              "/slash", "\x7f", "ü\u0301", "{}", "[1]", "123", "-0"]


def test_ids_of_any_characters_are_recorded_as_sent_and_found_by_the_next_run(tmp_path):
    """A request's events go to SQLite as one JSON object keyed by id: escapes, control
    characters and non-ASCII ids come back as the same strings, in the next run's look-up and
    in the ledger command's."""
    ledger = open_ledger(tmp_path)
    with ledger.claim(CONNECTION_ID, events(*TRICKY_IDS)) as claim:
        claim.record(events(*TRICKY_IDS), 200, "SUCCESS")
    ledger.close()
    later = open_ledger(tmp_path, "run-2")
    with later.claim(CONNECTION_ID, events(*TRICKY_IDS, "new")) as claim:
        assert claim.skip == set(TRICKY_IDS)
    later.close()
    with sqlite3.connect(tmp_path / "ledger.sqlite") as raw:
        kept = {row[0] for row in raw.execute("SELECT event_id FROM ledger_delivered")}
    assert kept == set(TRICKY_IDS)
    for event_id in TRICKY_IDS:
        assert [row["event_id"] for row in lookup(later.engine, event_id)] == [event_id]


def test_an_id_twice_in_one_request_is_kept_once_with_its_later_time(tmp_path):
    ledger = open_ledger(tmp_path)
    sent = [("a", "2026-11-01T10:00:00.000Z"), ("b", WHEN), ("a", "2026-11-01T11:00:00.000Z")]
    with ledger.claim(CONNECTION_ID, sent) as claim:
        claim.record(sent, 200, "SUCCESS")
    ledger.close()
    later = open_ledger(tmp_path, "run-2", read_only=True)
    assert [row["event_time"] for row in lookup(later.engine, "a")] == [
        "2026-11-01T11:00:00.000Z"
    ]
    later.close()
