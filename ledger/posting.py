"""The posting API: two-phase transfers after TigerBeetle (reserve -> post, possibly partial, | void) and reversal.

Money flow of a card payment (amounts in minor units of one currency):
- reserve A:   pending  debit  gateway clearing A  (the gateway will owe us A)
               pending  credit merchant payable A  (we will owe the merchant A)
- post P <= A, fee F <= P, in one ledger transaction:
               release  the whole pending A on both accounts (A - P is thereby released),
               post     debit  gateway clearing P, credit merchant payable P,
               post     debit  merchant payable F, credit fees revenue F.
- void:        release  the pending A on both accounts.
- reverse:     post the posted entries of `post` with sides swapped (refund): every account's net effect is zero.
- dispute D (a chargeback of a captured payment; D at most what was posted):
    opened:    debit  disputes D, credit gateway clearing D (the gateway took D back while the dispute runs);
    won:       debit  gateway clearing D, credit disputes D (the money came back);
    lost:      debit  chargeback losses D, credit disputes D (written off; billing the merchant is finance's call).
- refund R of a captured payment (one payment_operations row; several per payment, their sum within the capture),
  two-phase like the payment itself:
    reserve:   pending  debit  merchant payable R  (the merchant's balance must cover it: the account's flag)
               pending  credit gateway clearing R
    post:      release  both pending R, post debit merchant payable R, credit gateway clearing R (money went back);
    void:      release  both pending R (the gateway refused the refund).
  Fee policy on refunds: the fee is KEPT. The gateways keep their processing fee on a refund (Stripe and Adyen do
  not return it), so the merchant's payable is debited the refunded amount and fees revenue is untouched; the
  saga's own full reversal (`reverse`, a compensation, not a refund the merchant asked for) returns the fee.

Every function takes a Connection whose transaction the caller owns (CommitLedger posts, moves the payment's
status and writes the outbox in one transaction), is keyword-only and idempotent by (payment_id, kind). Concurrency:
each operation first locks the payment row, then its accounts in ascending id order (one SELECT ... ORDER BY id
FOR NO KEY UPDATE), so two writers never wait on each other in opposite orders. Expects READ COMMITTED, where each
statement after a lock sees what the lock holder committed.

Checks done here under those locks return a result saying why nothing was written; the database refuses the same
states again (CHECK constraints, triggers, unique keys), so a bug here cannot break the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Row, insert, select, text

from ledger.chart import dispute_accounts, ensure_chart, fees_revenue_account, settlement_accounts
from ledger.results import LedgerResult
from ledger.schema import accounts, ledger_entries, ledger_transactions
from store.results import Reason
from store.schema import payments

_TX = ledger_transactions
INSERT_ENTRIES_SQL = (
    "INSERT INTO ledger_entries (transaction_id, account_id, currency, side, effect, amount_minor)"
    " SELECT {tx}, u.account_id, {currency}, u.side, u.effect, u.amount_minor"
    " FROM unnest(CAST({accounts} AS bigint[]), CAST({sides} AS text[]), CAST({effects} AS text[]),"
    " CAST({amounts} AS bigint[]))"
    " WITH ORDINALITY AS u(account_id, side, effect, amount_minor, n) ORDER BY u.n"
)
_INSERT_ENTRIES = text(
    INSERT_ENTRIES_SQL.format(
        tx=":tx", currency=":currency", accounts=":accounts", sides=":sides", effects=":effects", amounts=":amounts"
    )
)


@dataclass(frozen=True, slots=True)
class _Entry:
    account_id: int
    side: str  # 'debit' | 'credit'
    effect: str  # 'pending' | 'release' | 'post'
    amount_minor: int


@dataclass(frozen=True, slots=True)
class _Tx:
    id: int
    kind: str
    currency: str
    amount_minor: int
    fee_minor: int


def _lock_payment(conn: Connection, payment_id: int) -> bool:
    row = conn.execute(select(payments.c.id).where(payments.c.id == payment_id).with_for_update(key_share=True)).first()
    return row is not None


def _transactions(conn: Connection, payment_id: int, operation_id: int | None = None) -> dict[str, _Tx]:
    """The payment's own ledger transactions by kind (at most one per kind: unique (payment_id, kind) where no
    operation is named), or one refund's (operation_id), one query."""
    owner = _TX.c.operation_id.is_(None) if operation_id is None else _TX.c.operation_id == operation_id
    rows = conn.execute(
        select(_TX.c.id, _TX.c.kind, _TX.c.currency, _TX.c.amount_minor, _TX.c.fee_minor).where(
            _TX.c.payment_id == payment_id, owner
        )
    ).all()
    return {r.kind: _Tx(int(r.id), r.kind, r.currency, int(r.amount_minor), int(r.fee_minor)) for r in rows}


def _result(tx: _Tx, payment_id: int, kind: str, *, applied: bool, reason: Reason) -> LedgerResult:
    return LedgerResult(applied, reason, payment_id, kind, tx.id, tx.amount_minor, tx.fee_minor)


def _not(reason: Reason, payment_id: int, kind: str) -> LedgerResult:
    return LedgerResult(False, reason, payment_id, kind)


def _lock_accounts(conn: Connection, account_ids: set[int]) -> dict[int, Row[tuple[object, ...]]]:
    rows = conn.execute(
        select(
            accounts.c.id,
            accounts.c.debits_must_not_exceed_credits,
            accounts.c.credits_must_not_exceed_debits,
            accounts.c.debits_pending,
            accounts.c.debits_posted,
            accounts.c.credits_pending,
            accounts.c.credits_posted,
        )
        .where(accounts.c.id.in_(sorted(account_ids)))
        .order_by(accounts.c.id)
        .with_for_update(key_share=True)
    ).all()
    return {int(row.id): row for row in rows}


def _within_limits(locked: dict[int, Row[tuple[object, ...]]], entries: list[_Entry]) -> bool:
    """The accounts' state after these entries respects their flags (the same rule the CHECK constraints hold)."""
    for account_id, row in locked.items():
        dp, dpo = int(row.debits_pending), int(row.debits_posted)
        cp, cpo = int(row.credits_pending), int(row.credits_posted)
        for e in entries:
            if e.account_id != account_id:
                continue
            sign = -1 if e.effect == "release" else 1
            if e.side == "debit" and e.effect == "post":
                dpo += e.amount_minor
            elif e.side == "debit":
                dp += sign * e.amount_minor
            elif e.effect == "post":
                cpo += e.amount_minor
            else:
                cp += sign * e.amount_minor
        if row.debits_must_not_exceed_credits and dp + dpo > cpo:
            return False
        if row.credits_must_not_exceed_debits and cp + cpo > dpo:
            return False
    return True


def _apply(
    conn: Connection,
    *,
    payment_id: int,
    kind: str,
    currency: str,
    amount_minor: int,
    entries: list[_Entry],
    fee_minor: int = 0,
    pending_transaction_id: int | None = None,
    reverses_transaction_id: int | None = None,
    description: str | None = None,
    operation_id: int | None = None,
) -> LedgerResult:
    """Lock the entries' accounts (ascending id), refuse what would break a flag, else write the transaction."""
    locked = _lock_accounts(conn, {e.account_id for e in entries})
    if not _within_limits(locked, entries):
        return _not(Reason.INSUFFICIENT_FUNDS, payment_id, kind)
    tx_id = conn.execute(
        insert(_TX)
        .values(
            payment_id=payment_id,
            kind=kind,
            currency=currency,
            amount_minor=amount_minor,
            fee_minor=fee_minor,
            pending_transaction_id=pending_transaction_id,
            reverses_transaction_id=reverses_transaction_id,
            description=description,
            operation_id=operation_id,
        )
        .returning(_TX.c.id)
    ).scalar_one()
    # One INSERT for all the transaction's entries: the statement-level totals trigger then applies its net per
    # account in one step (credits and debits together). unnest keeps the SQL text fixed, so it is prepared once.
    conn.execute(
        _INSERT_ENTRIES,
        {
            "tx": tx_id,
            "currency": currency,
            "accounts": [e.account_id for e in entries],
            "sides": [e.side for e in entries],
            "effects": [e.effect for e in entries],
            "amounts": [e.amount_minor for e in entries],
        },
    )
    return LedgerResult(True, Reason.APPLIED, payment_id, kind, int(tx_id), amount_minor, fee_minor)


def _entries_of(conn: Connection, transaction_id: int) -> list[_Entry]:
    rows = conn.execute(
        select(
            ledger_entries.c.account_id, ledger_entries.c.side, ledger_entries.c.effect, ledger_entries.c.amount_minor
        )
        .where(ledger_entries.c.transaction_id == transaction_id)
        .order_by(ledger_entries.c.id)
    ).all()
    return [_Entry(int(r.account_id), r.side, r.effect, int(r.amount_minor)) for r in rows]


def _pending_pair(entries: list[_Entry]) -> tuple[int, int]:
    """(debit account, credit account) of a reservation."""
    debit = next(e.account_id for e in entries if e.side == "debit" and e.effect == "pending")
    credit = next(e.account_id for e in entries if e.side == "credit" and e.effect == "pending")
    return debit, credit


def reserve(
    conn: Connection,
    *,
    payment_id: int,
    merchant_id: str,
    gateway: str,
    currency: str,
    amount_minor: int,
    description: str | None = None,
) -> LedgerResult:
    """Create the pending transfer gateway clearing -> merchant payable for amount_minor."""
    kind = "reserve"
    if amount_minor <= 0:
        raise ValueError(f"amount_minor must be positive, got {amount_minor}")
    if not _lock_payment(conn, payment_id):
        return _not(Reason.PAYMENT_NOT_FOUND, payment_id, kind)
    earlier = _transactions(conn, payment_id).get(kind)
    if earlier is not None:
        return _result(earlier, payment_id, kind, applied=False, reason=Reason.ALREADY_APPLIED)
    chart = ensure_chart(conn, merchant_id=merchant_id, gateway=gateway, currency=currency)
    entries = [
        _Entry(chart.gateway_clearing_id, "debit", "pending", amount_minor),
        _Entry(chart.merchant_payable_id, "credit", "pending", amount_minor),
    ]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=currency, amount_minor=amount_minor,
                  entries=entries, description=description)


def _resolution_blocker(conn: Connection, payment_id: int, kind: str) -> LedgerResult | _Tx:
    """The reservation to resolve, or the result explaining why there is nothing to do."""
    other = "void" if kind == "post" else "post"
    existing = _transactions(conn, payment_id)
    earlier = existing.get(kind)
    if earlier is not None:
        return _result(earlier, payment_id, kind, applied=False, reason=Reason.ALREADY_APPLIED)
    resolved = existing.get(other)
    if resolved is not None:
        return _result(resolved, payment_id, kind, applied=False, reason=Reason.ALREADY_RESOLVED)
    pending = existing.get("reserve")
    if pending is None:
        return _not(Reason.NO_RESERVATION, payment_id, kind)
    return pending


def post(
    conn: Connection, *, payment_id: int, amount_minor: int, fee_minor: int = 0, description: str | None = None
) -> LedgerResult:
    """Post amount_minor (<= reserved) of the reservation, release the rest, and move fee_minor to fees revenue."""
    kind = "post"
    if amount_minor <= 0 or fee_minor < 0:
        raise ValueError(f"amount_minor must be positive and fee_minor >= 0, got {amount_minor}, {fee_minor}")
    if not _lock_payment(conn, payment_id):
        return _not(Reason.PAYMENT_NOT_FOUND, payment_id, kind)
    found = _resolution_blocker(conn, payment_id, kind)
    if isinstance(found, LedgerResult):
        return found
    pending = found
    if amount_minor > pending.amount_minor:
        return _not(Reason.EXCEEDS_RESERVATION, payment_id, kind)
    if fee_minor > amount_minor:
        return _not(Reason.FEE_EXCEEDS_AMOUNT, payment_id, kind)
    clearing, payable = _pending_pair(_entries_of(conn, pending.id))
    entries = [
        _Entry(clearing, "debit", "release", pending.amount_minor),
        _Entry(payable, "credit", "release", pending.amount_minor),
        _Entry(clearing, "debit", "post", amount_minor),
        _Entry(payable, "credit", "post", amount_minor),
    ]
    if fee_minor > 0:
        fees = fees_revenue_account(conn, currency=pending.currency)
        entries += [_Entry(payable, "debit", "post", fee_minor), _Entry(fees, "credit", "post", fee_minor)]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=pending.currency, amount_minor=amount_minor,
                  fee_minor=fee_minor, entries=entries, pending_transaction_id=pending.id, description=description)


def void(conn: Connection, *, payment_id: int, description: str | None = None) -> LedgerResult:
    """Release the whole pending transfer; a no-op result when there is none or it was already resolved."""
    kind = "void"
    if not _lock_payment(conn, payment_id):
        return _not(Reason.PAYMENT_NOT_FOUND, payment_id, kind)
    found = _resolution_blocker(conn, payment_id, kind)
    if isinstance(found, LedgerResult):
        return found
    pending = found
    clearing, payable = _pending_pair(_entries_of(conn, pending.id))
    entries = [
        _Entry(clearing, "debit", "release", pending.amount_minor),
        _Entry(payable, "credit", "release", pending.amount_minor),
    ]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=pending.currency,
                  amount_minor=pending.amount_minor, entries=entries, pending_transaction_id=pending.id,
                  description=description)


def reservation_held(conn: Connection, *, payment_id: int) -> bool:
    """The payment's reservation is made and neither posted nor voided."""
    kinds = _transactions(conn, payment_id)
    return "reserve" in kinds and "post" not in kinds and "void" not in kinds


def _after_post(conn: Connection, payment_id: int, kind: str) -> LedgerResult | tuple[dict[str, _Tx], _Tx]:
    """For an operation on a posted payment (reverse, disputes): the payment's transactions and its post, or the
    result saying why there is nothing to do (no payment, `kind` applied before, nothing posted)."""
    if not _lock_payment(conn, payment_id):
        return _not(Reason.PAYMENT_NOT_FOUND, payment_id, kind)
    existing = _transactions(conn, payment_id)
    earlier = existing.get(kind)
    if earlier is not None:
        return _result(earlier, payment_id, kind, applied=False, reason=Reason.ALREADY_APPLIED)
    posted = existing.get("post")
    if posted is None:
        return _not(Reason.NOTHING_POSTED, payment_id, kind)
    return existing, posted


def reverse(conn: Connection, *, payment_id: int, description: str | None = None) -> LedgerResult:
    """Add the posted entries of the payment's post with sides swapped (refund and fee returned)."""
    kind = "reverse"
    found = _after_post(conn, payment_id, kind)
    if isinstance(found, LedgerResult):
        return found
    _, posted = found
    flip = {"debit": "credit", "credit": "debit"}
    entries = [
        _Entry(e.account_id, flip[e.side], "post", e.amount_minor)
        for e in _entries_of(conn, posted.id)
        if e.effect == "post"
    ]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=posted.currency,
                  amount_minor=posted.amount_minor, fee_minor=posted.fee_minor, entries=entries,
                  reverses_transaction_id=posted.id, description=description)


DISPUTE_KINDS = ("dispute_opened", "dispute_won", "dispute_lost")


def dispute(conn: Connection, *, payment_id: int, kind: str, gateway: str, amount_minor: int,
            description: str | None = None) -> LedgerResult:
    """Move a disputed amount: `kind` is dispute_opened, dispute_won or dispute_lost (see the module docstring).
    A decision (won, lost) needs the opening; at most one of each per payment; never more than was posted."""
    if kind not in DISPUTE_KINDS:
        raise ValueError(f"kind must be one of {DISPUTE_KINDS} (got {kind!r})")
    if amount_minor <= 0:
        raise ValueError(f"amount_minor must be positive, got {amount_minor}")
    found = _after_post(conn, payment_id, kind)
    if isinstance(found, LedgerResult):
        return found
    existing, posted = found
    if amount_minor > posted.amount_minor:
        return _not(Reason.EXCEEDS_RESERVATION, payment_id, kind)
    decided = [k for k in ("dispute_won", "dispute_lost") if k in existing]
    if kind != "dispute_opened" and ("dispute_opened" not in existing or decided):
        return _not(Reason.ALREADY_RESOLVED if decided else Reason.NOT_FOUND, payment_id, kind)
    clearing, held, losses = dispute_accounts(conn, gateway=gateway, currency=posted.currency)
    debit, credit = {"dispute_opened": (held, clearing), "dispute_won": (clearing, held),
                     "dispute_lost": (losses, held)}[kind]
    entries = [_Entry(debit, "debit", "post", amount_minor), _Entry(credit, "credit", "post", amount_minor)]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=posted.currency, amount_minor=amount_minor,
                  entries=entries, description=description)


def reserve_refund(conn: Connection, *, payment_id: int, operation_id: int, amount_minor: int,
                   description: str | None = None) -> LedgerResult:
    """Hold refund `operation_id` of amount_minor: pending debit merchant payable, pending credit gateway clearing.
    INSUFFICIENT_FUNDS when the merchant's balance cannot cover it (the payable's flag); NOTHING_POSTED when the
    payment was never posted; EXCEEDS_RESERVATION beyond what was posted."""
    kind = "refund_reserve"
    if amount_minor <= 0:
        raise ValueError(f"amount_minor must be positive, got {amount_minor}")
    if not _lock_payment(conn, payment_id):
        return _not(Reason.PAYMENT_NOT_FOUND, payment_id, kind)
    own = _transactions(conn, payment_id)
    posted = own.get("post")
    if posted is None:
        return _not(Reason.NOTHING_POSTED, payment_id, kind)
    if "reverse" in own:  # the saga gave the whole payment back: nothing is left to refund
        return _not(Reason.ALREADY_RESOLVED, payment_id, kind)
    earlier = _transactions(conn, payment_id, operation_id).get(kind)
    if earlier is not None:
        return _result(earlier, payment_id, kind, applied=False, reason=Reason.ALREADY_APPLIED)
    if amount_minor > posted.amount_minor:
        return _not(Reason.EXCEEDS_RESERVATION, payment_id, kind)
    # The post's first posted debit is gateway clearing, its first posted credit merchant payable (see `post`).
    posted_entries = [e for e in _entries_of(conn, posted.id) if e.effect == "post"]
    clearing = next(e.account_id for e in posted_entries if e.side == "debit")
    payable = next(e.account_id for e in posted_entries if e.side == "credit")
    fee_share = _fee_share(conn, payment_id, posted, amount_minor)
    fees = fees_revenue_account(conn, currency=posted.currency) if fee_share else None
    entries = [_Entry(account, side, "pending", amount) for account, side, amount in (
        (payable, "debit", amount_minor - fee_share), (fees, "debit", fee_share),
        (clearing, "credit", amount_minor)) if account is not None and amount > 0]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=posted.currency, amount_minor=amount_minor,
                  fee_minor=fee_share, entries=entries, description=description, operation_id=operation_id)


def _fee_share(conn: Connection, payment_id: int, posted: _Tx, amount_minor: int) -> int:
    """The part of the payment's fee refund `amount_minor` returns: pro rata, rounded down, and the rest of the fee
    with the refund that completes the captured amount (so refunds in full return the fee exactly). Counts the
    payment's other refunds that hold their reservation or posted it (voided ones gave their share back)."""
    rows = conn.execute(text(
        "SELECT coalesce(sum(r.amount_minor), 0) AS amount, coalesce(sum(r.fee_minor), 0) AS fee"
        " FROM ledger_transactions r WHERE r.payment_id = :p AND r.kind = 'refund_reserve'"
        " AND NOT EXISTS (SELECT 1 FROM ledger_transactions v WHERE v.operation_id = r.operation_id"
        "                 AND v.kind = 'refund_void')"), {"p": payment_id}).one()
    refunded, returned = int(rows.amount), int(rows.fee)
    if refunded + amount_minor >= posted.amount_minor:
        return max(0, posted.fee_minor - returned)
    return min(posted.fee_minor * amount_minor // posted.amount_minor, posted.fee_minor - returned)


def _refund_resolution(conn: Connection, payment_id: int, operation_id: int, kind: str) -> LedgerResult | _Tx:
    """The refund's reservation to resolve, or the result explaining why there is nothing to do."""
    if not _lock_payment(conn, payment_id):
        return _not(Reason.PAYMENT_NOT_FOUND, payment_id, kind)
    existing = _transactions(conn, payment_id, operation_id)
    earlier = existing.get(kind)
    if earlier is not None:
        return _result(earlier, payment_id, kind, applied=False, reason=Reason.ALREADY_APPLIED)
    other = existing.get("refund_void" if kind == "refund_post" else "refund_post")
    if other is not None:
        return _result(other, payment_id, kind, applied=False, reason=Reason.ALREADY_RESOLVED)
    pending = existing.get("refund_reserve")
    return _not(Reason.NO_RESERVATION, payment_id, kind) if pending is None else pending


def post_refund(conn: Connection, *, payment_id: int, operation_id: int, description: str | None = None
                ) -> LedgerResult:
    """The refund went back: release its reservation and post it (merchant payable -> gateway clearing)."""
    kind = "refund_post"
    found = _refund_resolution(conn, payment_id, operation_id, kind)
    if isinstance(found, LedgerResult):
        return found
    pending = found
    held = _entries_of(conn, pending.id)
    entries = [_Entry(e.account_id, e.side, "release", e.amount_minor) for e in held]
    entries += [_Entry(e.account_id, e.side, "post", e.amount_minor) for e in held]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=pending.currency,
                  amount_minor=pending.amount_minor, fee_minor=pending.fee_minor, entries=entries,
                  pending_transaction_id=pending.id, description=description, operation_id=operation_id)


def void_refund(conn: Connection, *, payment_id: int, operation_id: int, description: str | None = None
                ) -> LedgerResult:
    """The gateway refused the refund: release its reservation; a no-op result when there is none or it was
    resolved before."""
    kind = "refund_void"
    found = _refund_resolution(conn, payment_id, operation_id, kind)
    if isinstance(found, LedgerResult):
        return found
    pending = found
    entries = _entries_of(conn, pending.id)
    released = [_Entry(e.account_id, e.side, "release", e.amount_minor) for e in entries]
    return _apply(conn, payment_id=payment_id, kind=kind, currency=pending.currency,
                  amount_minor=pending.amount_minor, entries=released, pending_transaction_id=pending.id,
                  description=description, operation_id=operation_id)


def post_settlement(conn: Connection, *, import_id: int, batch_id: int, gateway: str, currency: str,
                    gross_minor: int, fee_minor: int, payout_minor: int, description: str | None = None
                    ) -> int | None:
    """Post what one import brought for one batch and currency: the lines' gross out of (or into) the gateway
    clearing account, their fees to the gateway's fee expense, their net into the gateway's balance of ours, and
    what was paid out from that balance to the bank. `gross_minor` and `fee_minor` sum the non-payout lines (signed as
    the lines are), `payout_minor` (>= 0) the payouts. Debits: balance (gross - fee - payout when positive), fees,
    bank; credit: clearing. The transaction's id, or None when every sum is zero (nothing moved). Idempotent per
    (import, batch, currency): the unique index refuses a second one."""
    if payout_minor < 0:
        raise ValueError(f"payout_minor must be >= 0, got {payout_minor}")
    accounts_ = settlement_accounts(conn, gateway=gateway, currency=currency)
    # Signed debit amounts per account (a negative debit is a credit); they sum to zero by construction.
    movements = {
        accounts_.clearing_id: -gross_minor,
        accounts_.fees_id: fee_minor,
        accounts_.balance_id: gross_minor - fee_minor - payout_minor,
        accounts_.bank_id: payout_minor,
    }
    assert sum(movements.values()) == 0
    entries = [_Entry(account, "debit" if amount > 0 else "credit", "post", abs(amount))
               for account, amount in movements.items() if amount != 0]
    if not entries:
        return None
    _lock_accounts(conn, {e.account_id for e in entries})
    tx_id = conn.execute(
        insert(_TX).values(
            payment_id=None, kind="settlement", currency=currency,
            amount_minor=sum(e.amount_minor for e in entries if e.side == "debit"), fee_minor=0,
            settlement_batch_id=batch_id, settlement_import_id=import_id, description=description,
        ).returning(_TX.c.id)
    ).scalar_one()
    conn.execute(_INSERT_ENTRIES, {
        "tx": tx_id, "currency": currency, "accounts": [e.account_id for e in entries],
        "sides": [e.side for e in entries], "effects": [e.effect for e in entries],
        "amounts": [e.amount_minor for e in entries],
    })
    return int(tx_id)
