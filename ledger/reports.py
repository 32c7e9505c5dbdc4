"""Finance reads: only the views and balance_at() the paysaga_finance role may read, never the base tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

MAX_EXPORT_BATCH = 10_000

BALANCE_COLUMNS = (
    "code",
    "currency",
    "pending_balance_minor",
    "posted_balance_minor",
    "available_balance_minor",
)
TRIAL_COLUMNS = ("currency", "code", "debit_balance_minor", "credit_balance_minor")
JOURNAL_COLUMNS = (
    "entry_id",
    "transaction_id",
    "payment_id",
    "transaction_kind",
    "created_at",
    "account_code",
    "side",
    "effect",
    "amount_minor",
    "currency",
)


def account_balances(conn: Connection) -> list[dict[str, Any]]:
    query = f"SELECT {', '.join(BALANCE_COLUMNS)} FROM v_account_balances ORDER BY currency, code"  # noqa: S608
    rows = conn.execute(text(query))
    return [dict(row) for row in rows.mappings()]


def balances_at(conn: Connection, *, as_of: datetime) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT account_id, code, currency, debits_pending, debits_posted, credits_pending, credits_posted,"
            " posted_balance_minor FROM balance_at(:as_of) ORDER BY account_id"
        ),
        {"as_of": as_of},
    )
    return [dict(row) for row in rows.mappings()]


def trial_balance(conn: Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-account rows, per-currency totals). Totals' difference_minor is 0 when the books balance."""
    lines = conn.execute(
        text(
            f"SELECT {', '.join(TRIAL_COLUMNS)} FROM v_trial_balance"  # noqa: S608  # fixed names
            " WHERE debit_balance_minor <> 0 OR credit_balance_minor <> 0 ORDER BY currency, code"
        )
    )
    totals = conn.execute(
        text(
            "SELECT currency, total_debits_minor, total_credits_minor, difference_minor"
            " FROM v_trial_balance_totals ORDER BY currency"
        )
    )
    return [dict(r) for r in lines.mappings()], [dict(r) for r in totals.mappings()]


def journal(conn: Connection, *, payment_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM v_journal WHERE payment_id = :p ORDER BY entry_id"),  # noqa: S608
        {"p": payment_id},
    )
    return [dict(row) for row in rows.mappings()]


def count_entries(conn: Connection, *, since: datetime, until: datetime) -> int:
    return int(
        conn.execute(
            text("SELECT count(*) FROM v_journal WHERE created_at >= :since AND created_at < :until"),
            {"since": since, "until": until},
        ).scalar_one()
    )


def iter_entries(
    conn: Connection, *, since: datetime, until: datetime, batch_size: int = 5_000
) -> Iterator[list[dict[str, Any]]]:
    """Journal entries with since <= created_at < until, in entry order, in batches of at most batch_size,
    streamed through a server-side cursor so memory stays bounded whatever the range."""
    size = min(max(batch_size, 1), MAX_EXPORT_BATCH)
    result = conn.execution_options(stream_results=True, yield_per=size).execute(
        text(
            f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM v_journal"  # noqa: S608  # fixed names
            " WHERE created_at >= :since AND created_at < :until ORDER BY entry_id"
        ),
        {"since": since, "until": until},
    )
    for partition in result.mappings().partitions(size):
        yield [dict(row) for row in partition]
