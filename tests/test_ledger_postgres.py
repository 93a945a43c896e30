"""A ledger shared through a real PostgreSQL server: two runs of the same events at the same time
send each event once, and a run killed mid-request leaves no claim that would block another."""

from __future__ import annotations

import json

import sqlalchemy as sa

from tests.harness import (
    CONNECTION_ID,
    Run,
    assert_no_leaks,
    purchase,
    run_target,
    singer_lines,
    start_target,
    target_config,
    wait_until,
)
from tests.test_postgres_e2e import PASSWORD, Postgres, postgres  # noqa: F401 - the fixture


def ledger_url(server: Postgres) -> str:
    return f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{server.port}/shop"


def ledger_rows(server: Postgres) -> int:
    engine = sa.create_engine(ledger_url(server))
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM ledger_delivered"))
                       .scalar_one())
    finally:
        engine.dispose()


def clear(server: Postgres) -> None:
    server.psql(
        "DROP TABLE IF EXISTS ledger_events, ledger_pending, ledger_delivered, ledger_appended, "
        "ledger_connections, ledger_requests, ledger_runs"
    )


def test_two_concurrent_runs_sharing_a_postgresql_ledger_send_each_event_once(
    fake, tmp_path, postgres  # noqa: F811
):
    clear(postgres)
    fake.configure(latency=0.05)
    total = 3000
    config = target_config(fake.url, ledger_url=ledger_url(postgres), events_per_request=100,
                           summary_file="summary.json")
    lines = singer_lines([purchase(i) for i in range(total)], state_every=100)
    processes = {name: start_target(tmp_path / name, config, lines) for name in ("a", "b")}
    runs = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        runs[name] = Run(process.returncode, stdout, stderr, tmp_path / name, dict(config))
        assert_no_leaks(runs[name], lines)
        assert runs[name].returncode == 0, stderr[-2000:]
        assert PASSWORD not in stderr, "the ledger's password is never logged"
        assert runs[name].states[-1] == {"position": total}
    assert fake.unique_count == total
    assert fake.accepted_count == total, "no event was sent by both runs"
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in runs]
    assert sum(s["events_delivered"] for s in summaries) == total
    assert sum(s["already_delivered"] for s in summaries) == total
    assert all(s["ledger"] == ledger_url(postgres).replace(PASSWORD, "***") for s in summaries)
    assert ledger_rows(postgres) == total


def test_a_run_killed_mid_request_leaves_no_claim_behind(fake, tmp_path, postgres):  # noqa: F811
    clear(postgres)
    fake.configure(latency=2.0)  # requests stay in flight long enough to kill the run there
    total = 400
    config = target_config(fake.url, ledger_url=ledger_url(postgres), events_per_request=100)
    lines = singer_lines([purchase(i) for i in range(total)], state_every=100)
    killed = start_target(tmp_path / "killed", config, lines)
    # arrived, not answered: `requests` lists a request as its answer goes out, and a kill
    # then may come after the target recorded it
    wait_until(lambda: fake.arrived >= 1, "a request in flight", 120)
    assert fake.requests == [], "killed while the first request is still unanswered"
    killed.kill()
    killed.communicate(timeout=60)  # killed before any answer reached it: nothing recorded
    fake.configure(latency=0.0)
    rerun = run_target(tmp_path / "rerun", config, lines, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.count("events delivered") == total, "no dead claim held an event back"
    assert rerun.count("events already delivered, not sent again") == 0
    assert fake.unique_count == total
    assert ledger_rows(postgres) == total


def test_a_split_request_on_postgresql_keeps_the_acknowledged_parts_and_frees_the_refused(
    postgres,  # noqa: F811
):
    """The ledger alone on PostgreSQL: a request bisected after a 400 records each
    acknowledged part as its own request; the refused event is not held, so it is sent after
    a fix; a resend on purpose records again."""
    clear(postgres)
    from target_spotify_conversions.ledger import Ledger
    from target_spotify_conversions.ledger_open import open_ledger
    from target_spotify_conversions.ledger_sql import lookup
    from tests.test_ledger import events

    ledger = open_ledger(ledger_url(postgres), run_id="run-1")
    assert isinstance(ledger, Ledger)
    assert not ledger.sqlite
    with ledger.claim(CONNECTION_ID, events("a", "b", "c", "d")) as claim:
        assert claim.skip == frozenset()
        claim.record(events("a", "b"), 200, "first half")
        claim.record(events("d"), 200, "last quarter")  # c was refused
    assert lookup(ledger.engine, "a")[0]["answer"] == "first half"
    assert lookup(ledger.engine, "d")[0]["answer"] == "last quarter"
    assert lookup(ledger.engine, "c") == []
    with ledger.claim(CONNECTION_ID, events("a", "b", "c", "d")) as claim:
        assert claim.skip == {"a", "b", "d"}
        claim.record(events("c"), 200, "fixed")
    with ledger.claim(CONNECTION_ID, events("e")) as claim:
        pass  # never sent (the run stopped): nothing is held
    assert lookup(ledger.engine, "e") == []
    ledger.close()
    again = open_ledger(ledger_url(postgres), run_id="run-2", resend=True)
    assert isinstance(again, Ledger)
    with again.claim(CONNECTION_ID, events("a")) as claim:
        assert claim.skip == frozenset()
        claim.record(events("a"), 200, "again")
    assert lookup(again.engine, "a")[0]["answer"] == "again"
    engine = again.engine
    with engine.connect() as connection:
        requests = connection.execute(sa.text(
            "SELECT answer FROM ledger_requests ORDER BY id")).scalars().all()
    assert requests == ["first half", "last quarter", "fixed", "again"], "no empty claim left"
    again.close()


def test_a_postgresql_ledger_of_the_first_layout_is_moved_once_by_runs_starting_at_once(
    postgres,  # noqa: F811
):
    """Earlier builds kept the connection's id and the time's text in each event row."""
    from target_spotify_conversions.ledger import Ledger
    from target_spotify_conversions.ledger_open import open_ledger
    from target_spotify_conversions.ledger_sql import METADATA, lookup
    from tests.test_ledger import OTHER_CONNECTION, events, open_at_once

    clear(postgres)
    engine = sa.create_engine(ledger_url(postgres))
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE ledger_events (connection_id VARCHAR(36) NOT NULL, "
            "event_id VARCHAR NOT NULL, event_time VARCHAR(40) NOT NULL, "
            "request_id INTEGER NOT NULL, PRIMARY KEY (connection_id, event_id))"))
        connection.execute(sa.text(
            "CREATE TABLE ledger_pending (connection_id VARCHAR(36) NOT NULL, "
            "event_id VARCHAR NOT NULL, event_time VARCHAR(40) NOT NULL, "
            "request_id INTEGER NOT NULL)"))
        connection.execute(sa.text(
            "CREATE TABLE ledger_requests (id SERIAL PRIMARY KEY, connection_id VARCHAR(36) "
            "NOT NULL, run_id VARCHAR(36) NOT NULL, sent_at BIGINT NOT NULL, status INTEGER, "
            "answer VARCHAR(400), events INTEGER NOT NULL)"))
        connection.execute(sa.text(
            "CREATE TABLE ledger_runs (run_id VARCHAR(36) PRIMARY KEY, started_at BIGINT NOT NULL,"
            " pruned INTEGER NOT NULL)"))
        connection.execute(sa.text(
            "INSERT INTO ledger_requests (connection_id, run_id, sent_at, status, answer, events)"
            " VALUES (:c, 'old', extract(epoch from now())::bigint, 200, 'old answer', 2)"),
            {"c": CONNECTION_ID})
        connection.execute(sa.text(
            "INSERT INTO ledger_events VALUES (:c, 'a', '2026-10-31T23:59:59.123Z', 1), "
            "(:c, 'b', '1999-01-01T00:00:00.000Z', 1), (:c, 'j', '2026-13-45T99', 1)"),
            {"c": CONNECTION_ID})
    METADATA.create_all(engine)  # as a run killed while moving it leaves it: both layouts
    engine.dispose()
    dry = open_ledger(ledger_url(postgres), run_id="dry", read_only=True)  # reads, moves nothing
    assert isinstance(dry, Ledger)
    with dry.claim(CONNECTION_ID, events("a", "b", "c")) as claim:
        assert claim.skip == {"a", "b"}
    assert lookup(dry.engine, "a")[0]["event_time"] == "2026-10-31T23:59:59.123Z"
    dry.close()

    opened = open_at_once(ledger_url(postgres), 4)
    ledger = opened[0]
    with ledger.claim(CONNECTION_ID, events("a", "b", "c")) as claim:
        assert claim.skip == {"a", "b"}
        claim.record(events("c"), 200, "SUCCESS")
    with ledger.claim(OTHER_CONNECTION, events("a")) as claim:
        assert claim.skip == frozenset()
    [a] = lookup(ledger.engine, "a")
    assert (a["event_time"], a["answer"]) == ("2026-10-31T23:59:59.123Z", "old answer")
    assert lookup(ledger.engine, "b")[0]["event_time"] == "1999-01-01T00:00:00.000Z"
    assert lookup(ledger.engine, "j")[0]["event_time"] is None, "no time: kept, not failed"
    assert ledger_rows(postgres) == 4
    with ledger.engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
    assert not {"ledger_events", "ledger_pending"} & tables
    for each in opened:
        each.close()
