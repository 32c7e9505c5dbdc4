"""The double-entry ledger in PostgreSQL: accounts, the posting API (two-phase transfers), finance reports.

All functions take a SQLAlchemy Connection whose transaction the caller owns, are keyword-only and idempotent.
"""

from ledger.chart import Chart, ensure_chart
from ledger.posting import dispute, post, reserve, reverse, void
from ledger.results import LedgerResult

__all__ = ["Chart", "LedgerResult", "dispute", "ensure_chart", "post", "reserve", "reverse", "void"]
