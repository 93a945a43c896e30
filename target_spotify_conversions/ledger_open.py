"""Which delivery ledger a ledger_url names: a SQLite file (ledger.py, the standard library's
sqlite3) or a database server (ledger_sql.py, SQLAlchemy, loaded only then)."""

from __future__ import annotations

from .ledger import Ledger, SqliteLedger, describe, sqlite_path


def open_ledger(
    url: str,
    *,
    run_id: str,
    retention_days: int = 0,
    resend: bool = False,
    read_only: bool = False,
    pool_size: int = 4,
) -> Ledger | None:
    """Open (create, prune) the ledger, or fail now (LedgerError) with a message that says
    what to do. `read_only` (a dry run, the ledger command): nothing is created or written; a
    SQLite file that does not exist yet is no ledger (None). `pool_size`: a server's
    connections, one per request in flight."""
    description = describe(url)
    path = sqlite_path(url)
    if path is not None:
        return SqliteLedger.open_file(
            url, path, description, run_id=run_id, retention_days=retention_days,
            resend=resend, read_only=read_only,
        )
    from .ledger_sql import ServerLedger

    return ServerLedger.open_server(
        url, description, run_id=run_id, retention_days=retention_days, resend=resend,
        read_only=read_only, pool_size=pool_size,
    )
