"""Helpers of the ledger tests: a currency per example, and the invariants every ledger state must satisfy
(the records to post against: tests/integration/store/support.py)."""

from __future__ import annotations

import itertools
import string
from typing import Any

from sqlalchemy import Connection, text

_currencies = itertools.count(1)
_LETTERS = string.ascii_uppercase


def fresh_currency() -> str:
    """A currency code no other example in this process used (17,576 codes: enough for any bounded run)."""
    n = next(_currencies) % (26**3)
    return _LETTERS[n // 676] + _LETTERS[(n // 26) % 26] + _LETTERS[n % 26]


def rows(conn: Connection, sql: str, **params: Any) -> list[Any]:
    return list(conn.execute(text(sql), params).all())


def assert_invariants(conn: Connection) -> None:
    """Properties 1, 2, 4, 5 and the stored totals, over the whole database."""
    unbalanced = rows(
        conn,
        "SELECT transaction_id, currency, effect FROM ledger_entries GROUP BY transaction_id, currency, effect"
        " HAVING sum(CASE side WHEN 'debit' THEN amount_minor ELSE -amount_minor END) <> 0",
    )
    assert unbalanced == []
    totals = rows(
        conn,
        "SELECT currency, effect, sum(amount_minor) FILTER (WHERE side = 'debit'),"
        " sum(amount_minor) FILTER (WHERE side = 'credit') FROM ledger_entries GROUP BY currency, effect",
    )
    for currency, effect, debits, credits in totals:
        assert debits == credits, (currency, effect)
    drift = rows(
        conn,
        """
        WITH r AS (
            SELECT account_id,
                   coalesce(sum(CASE WHEN side = 'debit' AND effect = 'pending' THEN amount_minor
                                     WHEN side = 'debit' AND effect = 'release' THEN -amount_minor END), 0) AS dp,
                   coalesce(sum(amount_minor) FILTER (WHERE side = 'debit' AND effect = 'post'), 0) AS dpo,
                   coalesce(sum(CASE WHEN side = 'credit' AND effect = 'pending' THEN amount_minor
                                     WHEN side = 'credit' AND effect = 'release' THEN -amount_minor END), 0) AS cp,
                   coalesce(sum(amount_minor) FILTER (WHERE side = 'credit' AND effect = 'post'), 0) AS cpo
              FROM ledger_entries GROUP BY account_id)
        SELECT a.id FROM accounts a LEFT JOIN r ON r.account_id = a.id
         WHERE (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
               <> (coalesce(r.dp, 0), coalesce(r.dpo, 0), coalesce(r.cp, 0), coalesce(r.cpo, 0))
        """,
    )
    assert drift == []
    negative = rows(
        conn,
        "SELECT id FROM accounts WHERE debits_must_not_exceed_credits"
        " AND (debits_pending + debits_posted > credits_posted OR credits_posted - debits_posted < 0)",
    )
    assert negative == []
    # A reservation resolves at most once, and wholly: the resolving transaction releases exactly what was
    # reserved (posted + released = reserved), on both sides.
    resolutions = rows(
        conn,
        """
        SELECT r.payment_id, r.amount_minor,
               count(x.id) AS resolutions,
               coalesce(sum((SELECT sum(e.amount_minor) FROM ledger_entries e
                              WHERE e.transaction_id = x.id AND e.effect = 'release' AND e.side = 'credit')), 0)
        FROM ledger_transactions r
        LEFT JOIN ledger_transactions x ON x.pending_transaction_id = r.id
        WHERE r.kind = 'reserve' GROUP BY r.payment_id, r.amount_minor
        """,
    )
    for _payment, reserved, count, released in resolutions:
        assert count in (0, 1)
        assert released == (reserved if count == 1 else 0)
    # Posted amount never exceeds the reservation.
    over = rows(
        conn,
        "SELECT p.id FROM ledger_transactions p JOIN ledger_transactions r ON r.id = p.pending_transaction_id"
        " WHERE p.kind = 'post' AND p.amount_minor > r.amount_minor",
    )
    assert over == []
    # A reversal nets every account's posted effect of the post it reverses to exactly zero.
    not_netted = rows(
        conn,
        """
        SELECT v.id, e.account_id FROM ledger_transactions v
          JOIN ledger_entries e ON e.transaction_id IN (v.id, v.reverses_transaction_id) AND e.effect = 'post'
         WHERE v.kind = 'reverse'
         GROUP BY v.id, e.account_id
        HAVING sum(CASE e.side WHEN 'debit' THEN e.amount_minor ELSE -e.amount_minor END) <> 0
        """,
    )
    assert not_netted == []
