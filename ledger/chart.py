"""The chart of accounts: per currency, each merchant's payable, each gateway's clearing account, fees revenue.

Account codes are stable keys (`merchant_payable:<merchant>:<CUR>`), so get-or-create is one
INSERT ... ON CONFLICT DO NOTHING per account and safe under concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from core.money import check_currency_code
from ledger.schema import accounts


@dataclass(frozen=True, slots=True)
class Chart:
    currency: str
    merchant_payable_id: int
    gateway_clearing_id: int
    fees_revenue_id: int


def merchant_payable_code(merchant_id: str, currency: str) -> str:
    return f"merchant_payable:{merchant_id}:{currency}"


def gateway_clearing_code(gateway: str, currency: str) -> str:
    return f"gateway_clearing:{gateway}:{currency}"


def fees_revenue_code(currency: str) -> str:
    return f"fees_revenue:{currency}"


def _get_or_create(
    conn: Connection,
    *,
    code: str,
    kind: str,
    currency: str,
    normal_side: str,
    merchant_id: str | None = None,
    gateway: str | None = None,
    no_negative: bool = False,
) -> int:
    found = conn.execute(select(accounts.c.id).where(accounts.c.code == code)).scalar_one_or_none()
    if found is not None:
        return int(found)
    conn.execute(
        insert(accounts)
        .values(
            code=code,
            kind=kind,
            currency=currency,
            normal_side=normal_side,
            merchant_id=merchant_id,
            gateway=gateway,
            debits_must_not_exceed_credits=no_negative,
        )
        .on_conflict_do_nothing(index_elements=[accounts.c.code])
    )
    return int(conn.execute(select(accounts.c.id).where(accounts.c.code == code)).scalar_one())


def disputes_code(gateway: str, currency: str) -> str:
    return f"disputes:{gateway}:{currency}"


def chargeback_losses_code(currency: str) -> str:
    return f"chargeback_losses:{currency}"


def dispute_accounts(conn: Connection, *, gateway: str, currency: str) -> tuple[int, int, int]:
    """(gateway clearing, disputes, chargeback losses) of this gateway and currency, made if missing. Disputes holds
    what the gateway took back for an open chargeback (debit-normal); losses is an expense (debit-normal)."""
    _check_currency_code(currency)
    clearing = _get_or_create(conn, code=gateway_clearing_code(gateway, currency), kind="gateway_clearing",
                              currency=currency, normal_side="debit", gateway=gateway)
    held = _get_or_create(conn, code=disputes_code(gateway, currency), kind="disputes", currency=currency,
                          normal_side="debit", gateway=gateway)
    losses = _get_or_create(conn, code=chargeback_losses_code(currency), kind="chargeback_losses",
                            currency=currency, normal_side="debit")
    return clearing, held, losses


def gateway_balance_code(gateway: str, currency: str) -> str:
    return f"gateway_balance:{gateway}:{currency}"


def bank_code(gateway: str, currency: str) -> str:
    return f"bank:{gateway}:{currency}"


def gateway_fees_code(gateway: str, currency: str) -> str:
    return f"gateway_fees:{gateway}:{currency}"


@dataclass(frozen=True, slots=True)
class SettlementAccounts:
    """The accounts a gateway's settlement moves money between, in one currency: its clearing account (what the
    ledger booked as owed by the gateway), its balance of ours (settled, awaiting payout), the bank account its
    payouts reach, and its fees (an expense). All debit-normal."""

    clearing_id: int
    balance_id: int
    bank_id: int
    fees_id: int


def settlement_accounts(conn: Connection, *, gateway: str, currency: str) -> SettlementAccounts:
    _check_currency_code(currency)
    made = [
        _get_or_create(conn, code=code, kind=kind, currency=currency, normal_side="debit", gateway=gateway)
        for code, kind in ((gateway_clearing_code(gateway, currency), "gateway_clearing"),
                           (gateway_balance_code(gateway, currency), "gateway_balance"),
                           (bank_code(gateway, currency), "bank"),
                           (gateway_fees_code(gateway, currency), "gateway_fees"))
    ]
    return SettlementAccounts(*made)


def fees_revenue_account(conn: Connection, *, currency: str) -> int:
    return _get_or_create(
        conn, code=fees_revenue_code(currency), kind="fees_revenue", currency=currency, normal_side="credit"
    )


def ensure_chart(conn: Connection, *, merchant_id: str, gateway: str, currency: str) -> Chart:
    """Get or create the three accounts a payment of this merchant, gateway and currency moves money between.

    The merchant payable (what we owe the merchant) is credit-normal and flagged debits_must_not_exceed_credits:
    the database refuses any state where it goes below zero.
    """
    _check_currency_code(currency)
    codes = (
        merchant_payable_code(merchant_id, currency),
        gateway_clearing_code(gateway, currency),
        fees_revenue_code(currency),
    )
    # The common case, all three exist: one query.
    found = dict(conn.execute(select(accounts.c.code, accounts.c.id).where(accounts.c.code.in_(codes))).tuples().all())
    if len(found) == len(codes):
        return Chart(currency, int(found[codes[0]]), int(found[codes[1]]), int(found[codes[2]]))
    payable = _get_or_create(
        conn,
        code=codes[0],
        kind="merchant_payable",
        currency=currency,
        normal_side="credit",
        merchant_id=merchant_id,
        no_negative=True,
    )
    clearing = _get_or_create(
        conn,
        code=codes[1],
        kind="gateway_clearing",
        currency=currency,
        normal_side="debit",
        gateway=gateway,
    )
    fees = fees_revenue_account(conn, currency=currency)
    return Chart(currency, payable, clearing, fees)


def _check_currency_code(currency: str) -> None:
    check_currency_code(currency)
