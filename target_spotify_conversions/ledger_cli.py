"""`spotify-conversions-ledger`: what the delivery ledger knows, for support and operators.

    spotify-conversions-ledger [--config config.json | --url URL] lookup EVENT_ID
    spotify-conversions-ledger [--config config.json | --url URL] stats

The ledger is found as the target finds it: `--url`, else the config file's `ledger_url`,
else the `TARGET_SPOTIFY_CONVERSIONS_LEDGER_URL` variable, else the default SQLite file in the
working directory. It is opened read-only: asking never creates or changes a ledger. Output is
JSON; times are UTC. Exit 0 when the answer was found, 1 when the event is not in the ledger,
2 when the ledger cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .settings import DEFAULT_LEDGER_URL, SettingsError, _ledger_url

ENV_URL = "TARGET_SPOTIFY_CONVERSIONS_LEDGER_URL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spotify-conversions-ledger",
        description="Ask the delivery ledger of target-spotify-conversions (read-only).",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="the ledger's SQLAlchemy URL (as ledger_url)")
    where.add_argument("--config", help="the target's config file; its ledger_url is used")
    commands = parser.add_subparsers(dest="command", required=True)
    lookup = commands.add_parser("lookup", help="was this event delivered, when, and the answer")
    lookup.add_argument("event_id")
    commands.add_parser("stats", help="events and requests per connection, runs")
    args = parser.parse_args(argv)
    try:
        url = _url(args.url, args.config)
    except (SettingsError, OSError, ValueError) as exc:
        print(f"spotify-conversions-ledger: {exc}", file=sys.stderr)
        return 2
    if url is None:
        print("spotify-conversions-ledger: ledger_url is none: there is no ledger",
              file=sys.stderr)
        return 2
    import sqlalchemy  # loaded only here: --help stays quick

    from . import ledger, ledger_sql
    from .ledger_open import open_ledger

    try:
        opened = open_ledger(url, run_id=str(uuid.uuid4()), read_only=True)
    except ledger.LedgerError as exc:
        print(f"spotify-conversions-ledger: {exc}", file=sys.stderr)
        return 2
    if opened is None:
        print(f"spotify-conversions-ledger: no ledger at {ledger.describe(url)} (no run has "
              "delivered anything from this directory yet)", file=sys.stderr)
        return 2
    try:
        if args.command == "lookup":
            rows = [_readable(row) for row in ledger_sql.lookup(opened.engine, args.event_id)]
            print(json.dumps({"event_id": args.event_id, "ledger": opened.description,
                              "delivered": rows}, indent=2))
            return 0 if rows else 1
        found = ledger_sql.stats(opened.engine)
        found["connections"] = [_readable(row) for row in found["connections"]]
        found["last_run_started_at"] = _when(found["last_run_started_at"])
        path = ledger.sqlite_path(url)
        size = os.path.getsize(path) if path and os.path.exists(path) else None
        print(json.dumps({"ledger": opened.description, "file_bytes": size, **found},
                         indent=2))
        return 0
    except sqlalchemy.exc.SQLAlchemyError as exc:
        print(f"spotify-conversions-ledger: cannot read {opened.description}: "
              f"{type(exc).__name__}", file=sys.stderr)
        return 2
    finally:
        opened.close()


def _url(url: str | None, config: str | None) -> str | None:
    if url is None and config is not None:
        with open(config, encoding="utf-8") as file:
            url = json.load(file).get("ledger_url")
    if url is None:
        url = os.environ.get(ENV_URL) or DEFAULT_LEDGER_URL
    return _ledger_url(url)


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _when(value) if key.endswith("sent_at") else value for key, value in row.items()}


def _when(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


if __name__ == "__main__":
    sys.exit(main())
