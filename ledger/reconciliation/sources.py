"""A settlement file to its lines, by gateway: the one dispatch the CLI and the S3-triggered import share."""

from __future__ import annotations

from ledger.reconciliation.adyen_report import parse_adyen_settlement_report
from ledger.reconciliation.lines import SettlementSource
from ledger.reconciliation.sandbox_feed import parse_sandbox_feed
from ledger.reconciliation.stripe_balance import lines_from_balance_transactions, read_balance_transactions_file

__all__ = ["FILE_FORMATS", "parse_settlement_file"]

# What each gateway's settlement file is.
FILE_FORMATS: dict[str, str] = {
    "adyen": "Adyen's settlement detail report (CSV)",
    "stripe": "Stripe balance transactions (JSON: a list object, an array, or one object)",
    "sandbox": "the sandbox gateway's settlement feed (CSV)",
}


def parse_settlement_file(gateway: str, data: bytes, name: str) -> SettlementSource:
    """The file's lines, or SettlementFormatError naming the line and column (nothing of it is imported)."""
    if gateway == "adyen":
        return parse_adyen_settlement_report(data, name)
    if gateway == "sandbox":
        return parse_sandbox_feed(data, name)
    if gateway == "stripe":
        return lines_from_balance_transactions(read_balance_transactions_file(data, name), name)
    raise ValueError(f"no settlement file format for gateway {gateway!r}; one of {', '.join(FILE_FORMATS)}")
