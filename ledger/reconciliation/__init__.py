"""Reconciliation (DESIGN 8c): what the gateways settled, imported once, posted to the ledger, matched against what
the ledger expects, and the differences worked as discrepancies with a history."""
